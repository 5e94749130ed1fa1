import { requestVm } from '../../store/assignment';
import { recordPoll } from '../../store/vms';
import { silentLogger } from '../../core/log';
import { ADMIN_ACTIONS, FLEET_ACTIONS } from '../../web/admin-page';
import { createWebApp } from '../../web/web-app';
import { TEST_ADMIN_SECRET, crdCommand } from '../support/fixtures';
import { routeRequests } from '../support/routes';
import { TestStack, startTestStack } from '../support/stack';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;

function expectSecurityHeaders(response: Response, what: string) {
  const csp = response.headers.get('content-security-policy') ?? '';
  const directives = new Map(
    csp
      .split(';')
      .map((part) => part.trim().split(/\s+/))
      .map(([name, ...values]) => [name, values.join(' ')]),
  );
  expect({
    what,
    script: directives.get('script-src'),
    style: directives.get('style-src'),
    frames: directives.get('frame-ancestors'),
    fallback: directives.get('default-src'),
  }).toEqual({
    what,
    script: "'self'",
    style: "'self'",
    frames: "'none'",
    fallback: "'none'",
  });
  expect({
    what,
    nosniff: response.headers.get('x-content-type-options'),
    referrer: response.headers.get('referrer-policy'),
    frame: response.headers.get('x-frame-options'),
  }).toEqual({
    what,
    nosniff: 'nosniff',
    referrer: 'same-origin',
    frame: 'DENY',
  });
}

describe('security headers on every answer of the web app', () => {
  let env: TestStack;
  let assignmentId: string;
  beforeAll(async () => {
    env = await startTestStack();
    for (const name of ['sec-vm-1', 'sec-vm-2']) await recordPoll(env.db.sql, name, 60);
    const assigned = await requestVm(env.db.sql, { email: 'sec@example.com', crdCommand: crdCommand() });
    if (assigned.kind !== 'assigned') throw new Error('expected an assignment');
    assignmentId = assigned.assignmentId;
  });
  afterAll(async () => env?.close());

  it('sends them with pages, JSON, refusals and errors alike', async () => {
    const admin = { authorization: ADMIN };
    const requests: [string, string, RequestInit?][] = [
      ['the form', '/'],
      ['a VM page', `/vm/${assignmentId}`],
      ['an unknown VM page', '/vm/00000000-0000-4000-8000-000000000000'],
      ['a form with a mistake', '/api/request_vm', { method: 'POST', body: new URLSearchParams({ email: 'x', crd_command: 'y' }) }],
      ['the free count', '/api/unassigned_vms_count'],
      ['an assignment as JSON', `/api/assignment/${assignmentId}`],
      ['the dashboard without credentials', '/admin'],
      ['the dashboard', '/admin', { headers: admin }],
      ['a confirmation page', '/admin/vms/sec-vm-1/release', { headers: admin }],
      ['a VM log page', '/admin/vms/sec-vm-1/logs', { headers: admin }],
      ['the CSV', '/api/vms.csv', { headers: admin }],
      ['a path that does not exist', '/no/such/page'],
    ];
    for (const [what, path, init] of requests) {
      const response = await fetch(`${env.url}${path}`, { ...init, redirect: 'manual' });
      await response.arrayBuffer();
      expectSecurityHeaders(response, what);
    }
  });

  it('serves each page’s stylesheet and script from a hashed URL with long caching, and refuses other names', async () => {
    const form = await (await fetch(`${env.url}/`)).text();
    const vm = await (await fetch(`${env.url}/vm/${assignmentId}`)).text();
    expect(form).not.toMatch(/<script>|<style>|\sstyle=|\son[a-z]+=/);
    expect(vm).not.toMatch(/<script>|<style>|\sstyle=|\son[a-z]+=/);
    expect(vm).toContain(`data-assignment="${assignmentId}"`);
    const urls = [...`${form}${vm}`.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1]);
    expect(new Set(urls.map((url) => url.replace(/-[0-9a-f]{12}\./, '.')))).toEqual(
      new Set(['/assets/style.css', '/assets/form.js', '/assets/vm.js']),
    );
    for (const url of urls) {
      const response = await fetch(`${env.url}${url}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(response.headers.get('content-type')).toMatch(url.endsWith('.css') ? /^text\/css/ : /^text\/javascript/);
      expectSecurityHeaders(response, url);
    }
    const stale = await fetch(`${env.url}/assets/form-000000000000.js`);
    expect(stale.status).toBe(404);
  });

  it('keeps every page and answer out of caches (Cache-Control: no-store; routes read from the web app), the hashed assets aside', async () => {
    const app = createWebApp({ sql: { query: async () => [] }, log: silentLogger, adminSecret: async () => TEST_ADMIN_SECRET });
    const values: Record<string, (path: string) => readonly string[]> = {
      assignment: () => [assignmentId, '00000000-0000-4000-8000-000000000000'],
      ticket: () => ['00000000-0000-4000-8000-000000000000', 'not-a-ticket'],
      hostname: () => ['sec-vm-2', 'no-such-vm'],
      action: (path) => (path.includes('/fleet/') ? FLEET_ACTIONS : ADMIN_ACTIONS),
      file: () => [],
      token: () => ['A'.repeat(32), 'short'],
    };
    // Every GET, and the POSTs that answer with a page or JSON (a new PIN among them); the end of the session last.
    const requests = routeRequests(app, ['GET', 'POST'], values).sort(
      (a, b) => Number(a.path.endsWith('end-session')) - Number(b.path.endsWith('end-session')),
    );
    expect(requests.length).toBeGreaterThan(25);
    for (const { method, path } of requests) {
      const body = path === '/api/request_vm' ? new URLSearchParams({ email: 'cache@example.com', crd_command: crdCommand() }) : undefined;
      const response = await fetch(`${env.url}${path}`, { method, body, headers: { authorization: ADMIN }, redirect: 'manual' });
      await response.arrayBuffer();
      expect({ method, path, cacheControl: response.headers.get('cache-control') }).toEqual({ method, path, cacheControl: 'no-store' });
    }
  });

  it('answers the browser’s favicon.ico request with "no icon", not a 404', async () => {
    const response = await fetch(`${env.url}/favicon.ico`);
    expect(response.status).toBe(204);
    expectSecurityHeaders(response, '/favicon.ico');
  });
});
