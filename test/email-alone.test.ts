import { recordPoll } from '../core/vms';
import { dumpDatabase } from './support/database';
import { crdCommand } from './support/fixtures';
import { TestStack, startTestStack, submitForm } from './support/stack';

const HELD_ELSEWHERE = 'This email already has a VM, asked for from another browser. Open its page in that browser, or ask your instructor.';

/** Knowing a participant's email shows nothing of their VM, through the real local stack and PostgreSQL. */
describe('email alone opens nothing', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack();
  });
  afterAll(async () => env?.close());
  beforeEach(async () => {
    await env.db.pool.query('DELETE FROM vms');
    await recordPoll(env.db.sql, 'own-vm-1', 600);
    await recordPoll(env.db.sql, 'own-vm-2', 600);
  });

  /** The participant's first request, made long enough ago that it is no double click. */
  async function owner(email: string): Promise<{ hostname: string; pin: string; retryToken: string }> {
    const response = await submitForm(env.url, { email, crd_command: crdCommand() });
    expect(response.status).toBe(200);
    await env.db.pool.query(`UPDATE vms SET assigned_at = now() - interval '1 minute' WHERE email = $1`, [email]);
    return (await response.json()) as { hostname: string; pin: string; retryToken: string };
  }

  it('another browser with the same email is told to ask the instructor: no VM name, no PIN, no page, nothing stored', async () => {
    const vm = await owner('ada@example.com');
    const before = await dumpDatabase(env.db.pool);

    const json = await submitForm(env.url, { email: 'ada@example.com', crd_command: crdCommand() });
    expect(json.status).toBe(409);
    const text = await json.text();
    expect(JSON.parse(text)).toEqual({ error: HELD_ELSEWHERE });
    expect(text).not.toContain(vm.pin);

    const page = await fetch(`${env.url}/api/request_vm`, { method: 'POST', body: new URLSearchParams({ email: 'ada@example.com', crd_command: crdCommand() }), redirect: 'manual' });
    expect(page.status).toBe(409);
    const html = await page.text();
    expect(html).toContain(HELD_ELSEWHERE);
    expect(html).not.toContain(vm.hostname);
    expect(html).not.toContain(vm.pin);
    expect(await dumpDatabase(env.db.pool)).toBe(before);
  });

  it('the browser holding the retry token (cookie or JSON) is shown its VM and PIN again', async () => {
    const vm = await owner('grace@example.com');
    const byToken = await submitForm(env.url, { email: 'grace@example.com', crd_command: crdCommand(), retry_token: vm.retryToken });
    expect(byToken.status).toBe(200);
    expect(await byToken.json()).toMatchObject({ hostname: vm.hostname, pin: vm.pin });
    const byCookie = await fetch(`${env.url}/api/request_vm`, {
      method: 'POST',
      headers: { cookie: `lablink_retry=${vm.retryToken}` },
      body: new URLSearchParams({ email: 'grace@example.com', crd_command: crdCommand() }),
      redirect: 'manual',
    });
    expect(byCookie.status).toBe(303);
    expect(byCookie.headers.get('location')).toMatch(/\?outcome=existing$/);
  });

  it('a failed setup refused to another browser does not name the VM either', async () => {
    const vm = await owner('failed@example.com');
    await env.db.pool.query(`UPDATE vms SET state = 'error', error = 'invalid_grant' WHERE email = 'failed@example.com'`);
    const stranger = await submitForm(env.url, { email: 'failed@example.com', crd_command: crdCommand() });
    expect(stranger.status).toBe(409);
    const text = await stranger.text();
    expect(text).toContain('whose setup failed');
    expect(text).not.toContain(vm.hostname);
  });
});
