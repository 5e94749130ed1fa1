import { recordPoll } from '../../store/vms';
import { dumpDatabase } from '../support/database';
import { TEST_ADMIN_SECRET, crdCommand } from '../support/fixtures';
import { TestStack, startTestStack, submitForm } from '../support/stack';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;
const HELD_ELSEWHERE =
  'This email already has a VM, asked for from another browser. Open its page in that browser, or ask your instructor.';
type Owner = { hostname: string; pin: string; retryToken: string; status: string };

/** "Email alone opens nothing": attempts on the dashboard, and the admin's one-time hand-over link, through the real local stack. */
describe('email attempts from other browsers, and handing a VM to a new browser', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack();
  });
  afterAll(async () => env?.close());
  beforeEach(async () => {
    for (const table of ['vms', 'email_attempts', 'handover_links', 'address_grants']) await env.db.pool.query(`DELETE FROM ${table}`);
    for (const name of ['hand-vm-1', 'hand-vm-2']) await recordPoll(env.db.sql, name, 600);
  });

  /** The participant's first request, made long enough ago that it is no double click. */
  async function owner(email: string): Promise<Owner> {
    const response = await submitForm(env.url, { email, crd_command: crdCommand() });
    expect(response.status).toBe(200);
    await env.db.pool.query(`UPDATE vms SET assigned_at = now() - interval '1 minute' WHERE email = $1`, [email]);
    return (await response.json()) as Owner;
  }

  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${env.url}${path}`, {
      ...init,
      redirect: 'manual',
      headers: { authorization: ADMIN, origin: env.url, ...(init.headers as Record<string, string>) },
    });

  async function handoverLink(hostname: string): Promise<string> {
    const response = await admin(`/api/vms/${hostname}/handover`, { method: 'POST' });
    expect(response.status).toBe(201);
    return ((await response.json()) as { link: string }).link;
  }

  const openLink = (link: string, cookie?: string) =>
    fetch(link, { method: 'POST', redirect: 'manual', headers: cookie ? { cookie } : {} });
  const retryCookie = (response: Response) => /lablink_retry=([\w-]+)/.exec(response.headers.get('set-cookie') ?? '')?.[1];
  const asBrowser = (email: string, token: string) =>
    fetch(`${env.url}/api/request_vm`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `lablink_retry=${token}` },
      body: new URLSearchParams({ email, crd_command: crdCommand() }),
    });

  it('shows the dashboard who asked with a held email, when, and for which VM; stores nothing else about them', async () => {
    const vm = await owner('ada@example.com');
    const failed = await owner('grace@example.com');
    await env.db.pool.query(`UPDATE vms SET state = 'error', error = 'invalid_grant' WHERE email = 'grace@example.com'`);

    expect((await submitForm(env.url, { email: 'ada@example.com', crd_command: crdCommand() })).status).toBe(409);
    expect((await submitForm(env.url, { email: 'grace@example.com', crd_command: crdCommand() })).status).toBe(409);

    const { rows } = await env.db.pool.query('SELECT * FROM email_attempts ORDER BY id');
    expect(rows.map((row) => Object.keys(row).sort())).toEqual([
      ['attempted_at', 'email', 'hostname', 'id'],
      ['attempted_at', 'email', 'hostname', 'id'],
    ]);
    expect(rows.map((row) => [row.email, row.hostname])).toEqual([
      ['ada@example.com', vm.hostname],
      ['grace@example.com', failed.hostname],
    ]);

    const dashboard = await (await admin('/admin')).text();
    const section = dashboard.slice(dashboard.indexOf('id="email-attempts"'));
    expect(section).toContain('Asked for a VM another browser holds');
    expect(section).toMatch(
      new RegExp(`<time datetime="[^"]+">[\\d-]+ [\\d:]+ UTC</time></td><td>ada@example.com</td><td>${vm.hostname}</td>`),
    );
    expect(section).toContain(`href="/admin/vms/${vm.hostname}/handover"`);
  });

  it('the holder of the retry token is no attempt: nothing is recorded for it', async () => {
    const vm = await owner('ada@example.com');
    expect((await asBrowser('ada@example.com', vm.retryToken)).status).toBe(303);
    expect((await env.db.pool.query('SELECT * FROM email_attempts')).rows).toEqual([]);
    expect(await (await admin('/admin')).text()).not.toContain('id="email-attempts"');
  });

  it('a one-time link binds the browser that opens it (cookie, page, PIN), and the old browser loses the VM', async () => {
    const vm = await owner('ada@example.com');
    const confirm = await admin(`/admin/vms/${vm.hostname}/handover`);
    expect(confirm.status).toBe(200);
    expect(await confirm.text()).toContain('works once, within 30 minutes');

    const created = await admin(`/admin/vms/${vm.hostname}/handover`, { method: 'POST' });
    expect(created.status).toBe(200);
    const link = /id="handover-link"[^>]*value="([^"]+)"/.exec(await created.text())?.[1];
    expect(link).toMatch(new RegExp(`^${env.url}/handover/[\\w-]{32}$`));
    expect((await env.db.pool.query('SELECT token_hash FROM handover_links')).rows[0].token_hash).not.toContain(link!.split('/').pop());

    // Opening the link only asks: a link preview uses nothing.
    const before = await dumpDatabase(env.db.pool);
    const asked = await fetch(link!);
    expect(asked.status).toBe(200);
    expect(await asked.text()).toContain(`Use ${vm.hostname} in this browser`);
    expect(await dumpDatabase(env.db.pool)).toBe(before);

    const taken = await openLink(link!);
    expect(taken.status).toBe(303);
    expect(taken.headers.get('location')).toBe(vm.status.replace('/api/assignment/', '/vm/'));
    const newToken = retryCookie(taken);
    expect(newToken).toMatch(/^[\w-]{32}$/);
    const page = await fetch(`${env.url}${taken.headers.get('location')}`, { headers: { cookie: `lablink_retry=${newToken}` } });
    expect(await page.text()).toContain(vm.pin);

    // The new browser is the holder: the form shows it its VM again.
    const again = await asBrowser('ada@example.com', newToken!);
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toMatch(/\?outcome=existing$/);
    // The old browser is anyone else now: told to ask the instructor, and cannot give the VM back.
    const old = await submitForm(env.url, { email: 'ada@example.com', crd_command: crdCommand(), retry_token: vm.retryToken });
    expect(old.status).toBe(409);
    expect(await old.json()).toEqual({ error: HELD_ELSEWHERE });
    const oldDone = await fetch(`${env.url}${taken.headers.get('location')}/done`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `lablink_retry=${vm.retryToken}` },
    });
    expect(oldDone.status).toBe(403);

    // A second use is refused, and changes nothing.
    const afterUse = await dumpDatabase(env.db.pool);
    const second = await openLink(link!);
    expect(second.status).toBe(410);
    expect(await second.text()).toContain('This link was already used');
    expect(second.headers.get('set-cookie')).toBeNull();
    expect(await dumpDatabase(env.db.pool)).toBe(afterUse);
  });

  it('lets a participant whose setup failed retry from the new browser', async () => {
    const vm = await owner('ada@example.com');
    await env.db.pool.query(`UPDATE vms SET state = 'error', error = 'invalid_grant' WHERE email = 'ada@example.com'`);
    const newToken = retryCookie(await openLink(await handoverLink(vm.hostname)));
    const retried = await submitForm(env.url, { email: 'ada@example.com', crd_command: crdCommand(), retry_token: newToken! });
    expect(retried.status).toBe(200);
    expect(await retried.json()).toMatchObject({ hostname: vm.hostname, pin: vm.pin });
  });

  it('refuses unknown, malformed, expired and ended links with a clear 4xx, and changes nothing', async () => {
    const vm = await owner('ada@example.com');
    const link = await handoverLink(vm.hostname);
    const before = await dumpDatabase(env.db.pool);
    for (const [path, status, text] of [
      ['/handover/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 404, 'This hand-over link does not exist'],
      ['/handover/short', 404, 'This hand-over link does not exist'],
      [`/handover/${'%3Cb%3E'.repeat(5)}`, 404, 'This hand-over link does not exist'],
    ] as const) {
      for (const method of ['GET', 'POST']) {
        const response = await fetch(`${env.url}${path}`, { method, redirect: 'manual' });
        expect(response.status).toBe(status);
        expect(await response.text()).toContain(text);
      }
    }
    expect(await dumpDatabase(env.db.pool)).toBe(before);

    await env.db.pool.query(`UPDATE handover_links SET expires_at = now() - interval '1 second'`);
    const expiredState = await dumpDatabase(env.db.pool);
    for (const method of ['GET', 'POST']) {
      const expired = await fetch(link, { method, redirect: 'manual' });
      expect(expired.status).toBe(410);
      expect(await expired.text()).toContain('This link has expired');
    }
    expect(await dumpDatabase(env.db.pool)).toBe(expiredState);

    const fresh = await handoverLink(vm.hostname);
    expect((await admin(`/api/vms/${vm.hostname}/release`, { method: 'POST' })).status).toBe(200);
    const released = await dumpDatabase(env.db.pool);
    const ended = await openLink(fresh);
    expect(ended.status).toBe(410);
    expect(await ended.text()).toContain('This VM is no longer yours');
    expect(await dumpDatabase(env.db.pool)).toBe(released);
  });

  it('refuses a cross-site post of the link (a page elsewhere cannot bind its visitor to the VM), and the link stays usable', async () => {
    const vm = await owner('ada@example.com');
    const link = await handoverLink(vm.hostname);
    const before = await dumpDatabase(env.db.pool);
    for (const headers of [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }] as Record<string, string>[]) {
      const refused = await fetch(link, { method: 'POST', redirect: 'manual', headers });
      expect(refused.status).toBe(403);
      expect(await refused.json()).toEqual({ error: 'Cross-site requests to take over a VM are refused.' });
    }
    expect(await dumpDatabase(env.db.pool)).toBe(before);
    expect((await openLink(link)).status).toBe(303);
  });

  it('creates no link for a VM without a participant, or an unknown VM (409, nothing changed, not even old links)', async () => {
    const vm = await owner('ada@example.com');
    await handoverLink(vm.hostname);
    expect((await admin(`/api/vms/${vm.hostname}/release`, { method: 'POST' })).status).toBe(200);
    const before = await dumpDatabase(env.db.pool);
    for (const hostname of [vm.hostname, 'hand-vm-2', 'no-such-vm']) {
      const api = await admin(`/api/vms/${hostname}/handover`, { method: 'POST' });
      expect(api.status).toBe(409);
      expect(await api.json()).toEqual({ error: `${hostname} has no participant to hand over.` });
      expect((await admin(`/admin/vms/${hostname}/handover`, { method: 'POST' })).status).toBe(409);
    }
    expect(await dumpDatabase(env.db.pool)).toBe(before);
  });

  it('a new link replaces an unused one', async () => {
    const vm = await owner('ada@example.com');
    const first = await handoverLink(vm.hostname);
    const second = await handoverLink(vm.hostname);
    expect((await openLink(first)).status).toBe(404);
    expect((await openLink(second)).status).toBe(303);
  });

  it('two browsers opening the same link at once: exactly one gets the VM', async () => {
    for (let round = 0; round < 5; round += 1) {
      await env.db.pool.query('DELETE FROM vms');
      await env.db.pool.query('DELETE FROM handover_links');
      for (const name of ['hand-vm-1', 'hand-vm-2']) await recordPoll(env.db.sql, name, 600);
      const vm = await owner(`race${round}@example.com`);
      const link = await handoverLink(vm.hostname);
      const answers = await Promise.all([openLink(link), openLink(link)]);
      expect(answers.map((answer) => answer.status).sort()).toEqual([303, 410]);
      const winner = retryCookie(answers.find((answer) => answer.status === 303)!);
      const { rows } = await env.db.pool.query('SELECT retry_token FROM vms WHERE hostname = $1', [vm.hostname]);
      expect(rows[0].retry_token).toBe(winner);
    }
  });
});
