import { useTestStack } from '../support/suite';
import { silentLogger } from '../../core/log';
import { requestVm } from '../../store/assignment';
import { recordPoll } from '../../store/vms';
import { createAdminApp } from '../../web/admin-app';
import { ADMIN_ACTIONS, FLEET_ACTIONS } from '../../web/admin-page';
import { TEST_ADMIN_SECRET, crdCommand } from '../support/fixtures';
import { routeRequests } from '../support/routes';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;
/** What each path parameter of an admin route can be; a route with a parameter not listed here fails the test. */
const VALUES: Record<string, (path: string) => readonly string[]> = {
  hostname: () => ['adm-vm-1'],
  action: (path) => (path.includes('/fleet/') ? FLEET_ACTIONS : ADMIN_ACTIONS),
};

/** Every request that may change something, read from the admin app's own routes, so a new one cannot be left out. */
const REQUESTS = routeRequests(
  createAdminApp({ sql: { query: async () => [] }, log: silentLogger, adminSecret: async () => TEST_ADMIN_SECRET }),
  ['POST', 'PUT', 'PATCH', 'DELETE'],
  VALUES,
);

describe('every admin route that changes something refuses a cross-site request, even with credentials (routes read from the app)', () => {
  const suite = useTestStack();

  beforeEach(async () => {
    await suite.env.db.pool.query('DELETE FROM vms');
    for (const name of ['adm-vm-1', 'adm-vm-2']) await recordPoll(suite.env.db.sql, name, 600);
    await requestVm(suite.env.db.sql, { email: 'ada@example.com', crdCommand: crdCommand() });
  });

  it('finds the dashboard and API actions among the routes', () => {
    expect(REQUESTS).toEqual(
      expect.arrayContaining([
        { method: 'POST', path: '/admin/vms/adm-vm-1/release' },
        { method: 'POST', path: '/api/vms/adm-vm-1/move' },
        { method: 'POST', path: '/admin/fleet/end-session' },
        { method: 'POST', path: '/api/fleet/reset-released' },
      ]),
    );
  });

  it.each(REQUESTS.map((request) => [`${request.method} ${request.path}`, request] as const))('%s', async (_name, { method, path }) => {
    const before = await suite.env.db.dumpVms();
    const send = (headers: Record<string, string>) =>
      fetch(`${suite.env.url}${path}`, {
        method,
        headers: { authorization: ADMIN, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: 'confirm=yes',
        redirect: 'manual',
      });
    const crossSiteHeaders: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { 'sec-fetch-site': 'cross-site' },
      { origin: 'null' },
    ];
    for (const crossSite of crossSiteHeaders) {
      const refused = await send(crossSite);
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { error: string }).error).toMatch(/Cross-site requests to the admin routes are refused/);
      expect(await suite.env.db.dumpVms()).toEqual(before);
    }
    // The same request from the dashboard itself reaches the route: the refusals above were not a wrong path.
    const sameOrigin = await send({ origin: suite.env.url, 'sec-fetch-site': 'same-origin' });
    expect([403, 404]).not.toContain(sameOrigin.status);
  });
});
