import { recordPoll } from '../../store/vms';
import { dumpDatabase } from '../support/database';
import { crdCommand } from '../support/fixtures';
import { TestStack, startTestStack, submitForm, submitFormAsBrowser } from '../support/stack';

type Answer = { hostname?: string; retryToken?: string; error?: string };

/** Per-client limits on taking VMs, through the real local stack: every request comes from 127.0.0.1. */
describe('one VM per browser, and a bounded number of new VMs per client address', () => {
  let env: TestStack;
  // A day: the test never straddles the end of a window (they begin at midnight UTC).
  const WINDOW_SECONDS = 86_400;
  beforeAll(async () => {
    env = await startTestStack({ addressLimit: { vms: 2, windowSeconds: WINDOW_SECONDS } });
  });
  afterAll(async () => env?.close());
  beforeEach(async () => {
    await env.db.pool.query('DELETE FROM vms');
    await env.db.pool.query('DELETE FROM address_grants');
    for (let index = 1; index <= 6; index += 1) await recordPoll(env.db.sql, `limit-vm-${index}`, 600);
  });

  it('refuses a browser that holds a VM a second one under another email (token or cookie), and stores nothing; its own email still finds its VM', async () => {
    const first = await submitForm(env.url, { email: 'first@example.com', crd_command: crdCommand() });
    expect(first.status).toBe(200);
    const { hostname, retryToken } = (await first.json()) as Answer;
    const before = await dumpDatabase(env.db.pool);

    const byToken = await submitForm(env.url, { email: 'second@example.com', crd_command: crdCommand(), retry_token: retryToken! });
    expect(byToken.status).toBe(409);
    expect(((await byToken.json()) as Answer).error).toBe(
      `This browser already has a VM, ${hostname}, for another email: each browser gets one VM. Use ${hostname}, or ask your instructor.`,
    );

    const byCookie = await submitFormAsBrowser(
      env.url,
      { email: 'third@example.com', crd_command: crdCommand() },
      `lablink_retry=${retryToken}`,
    );
    expect(byCookie.page.status).toBe(409);
    expect(await byCookie.page.text()).toContain(`This browser already has a VM, ${hostname}, for another email`);
    // The VM's name is this browser's alone: it is not in the address the browser was sent to.
    expect(byCookie.location).not.toContain(hostname);
    expect(await dumpDatabase(env.db.pool)).toBe(before);

    const again = await submitForm(env.url, { email: 'first@example.com', crd_command: crdCommand(), retry_token: retryToken! });
    expect(again.status).toBe(200);
    expect(((await again.json()) as Answer).hostname).toBe(hostname);
  });

  it('refuses an address its third new VM in the window with 429, Retry-After and a page that says when; nothing is stored; a participant who has a VM still finds it', async () => {
    for (const email of ['a@example.com', 'b@example.com'])
      expect((await submitForm(env.url, { email, crd_command: crdCommand() })).status).toBe(200);
    const before = await dumpDatabase(env.db.pool);

    const refused = await submitForm(env.url, { email: 'c@example.com', crd_command: crdCommand() });
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(WINDOW_SECONDS);
    expect(((await refused.json()) as Answer).error).toMatch(
      /^Many VMs were just taken from your network\. Submit again in \d+ (seconds|minutes) \(your request was not stored\)/,
    );

    const { page } = await submitFormAsBrowser(env.url, { email: 'c@example.com', crd_command: crdCommand() });
    expect(page.status).toBe(429);
    expect(page.headers.get('retry-after')).toMatch(/^\d+$/);
    const html = await page.text();
    expect(html).toContain('Many VMs were just taken from your network. Submit again in');
    // The participant's entries stay in the form, ready to submit again.
    expect(html).toContain('value="c@example.com"');
    expect(await dumpDatabase(env.db.pool)).toBe(before);

    const existing = await submitForm(env.url, { email: 'a@example.com', crd_command: crdCommand() });
    expect(existing.status).toBe(200);
    expect(await dumpDatabase(env.db.pool)).toBe(before);
  });

  it('counts only VMs actually taken: a request that finds no VM free, or its own VM, leaves the count as it was', async () => {
    await env.db.pool.query(`UPDATE vms SET alive_until = now() WHERE hostname <> 'limit-vm-1'`);
    expect((await submitForm(env.url, { email: 'own@example.com', crd_command: crdCommand() })).status).toBe(200);
    const before = await dumpDatabase(env.db.pool);
    expect((await submitForm(env.url, { email: 'none-free@example.com', crd_command: crdCommand() })).status).toBe(503);
    expect((await submitForm(env.url, { email: 'own@example.com', crd_command: crdCommand() })).status).toBe(200);
    expect(await dumpDatabase(env.db.pool)).toBe(before);
    // The one grant used so far leaves one more for this address.
    await recordPoll(env.db.sql, 'limit-vm-2', 600);
    expect((await submitForm(env.url, { email: 'second-grant@example.com', crd_command: crdCommand() })).status).toBe(200);
  });

  it('six participants from one address submitting at the same moment: exactly two get a VM, four are told when to try again', async () => {
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, index) => submitForm(env.url, { email: `race${index}@example.com`, crd_command: crdCommand() })),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 200, 429, 429, 429, 429]);
    const { rows } = await env.db.pool.query(`SELECT count(*)::int AS taken FROM vms WHERE email IS NOT NULL`);
    expect(rows[0].taken).toBe(2);
  });
});
