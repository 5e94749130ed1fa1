import { recordHealth } from '../../store/health';
import { recordReset } from '../../store/reset';
import { recordOutcome, recordPoll } from '../../store/vms';
import { TEST_ADMIN_SECRET, crdCommand } from '../support/fixtures';
import { TestStack, startTestStack, submitForm, submitFormAsBrowser } from '../support/stack';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;
type Taken = { hostname: string; status: string; retryToken: string };
type Report = {
  price: { usd: number | null; source: string };
  participants: Record<string, unknown>[];
  totals: { participants: number; vmHours: number; estimatedCostUsd: number | null };
};

/** "After the workshop": what the dashboard, the CSV and the JSON report per participant, through the real local stack. */
describe('the after-workshop report', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack({ pricing: { instanceType: 'g4dn.xlarge' } });
  });
  afterAll(async () => env?.close());

  const get = (path: string) => fetch(`${env.url}${path}`, { headers: { authorization: ADMIN } });
  const assignmentOf = (taken: Taken) => taken.status.replace('/api/assignment/', '');
  const history = async (email: string) =>
    (await env.db.pool.query('SELECT * FROM assignment_history WHERE email = $1 ORDER BY id', [email])).rows;

  beforeAll(async () => {
    for (const name of ['report-vm-1', 'report-vm-2', 'report-vm-3']) await recordPoll(env.db.sql, name, 600);
    // Ada: ready, connected, then released by the instructor.
    const ada = (await (await submitForm(env.url, { email: 'ada@example.com', crd_command: crdCommand() })).json()) as Taken;
    await recordOutcome(env.db.sql, { hostname: ada.hostname, assignmentId: assignmentOf(ada), outcome: 'configured', error: null });
    await recordHealth(env.db.sql, ada.hostname, { inUse: true });
    expect((await fetch(`${env.url}/api/vms/${ada.hostname}/release`, { method: 'POST', headers: { authorization: ADMIN } })).status).toBe(
      200,
    );
    // Grace: start-host fails, she retries with a new command, and is still on her VM; she had waited in the line.
    const grace = (await (await submitForm(env.url, { email: 'grace@example.com', crd_command: crdCommand() })).json()) as Taken;
    await recordOutcome(env.db.sql, {
      hostname: grace.hostname,
      assignmentId: assignmentOf(grace),
      outcome: 'error',
      error: 'start-host exited with code 1',
    });
    const retried = (await (
      await submitForm(env.url, { email: 'grace@example.com', crd_command: crdCommand(), retry_token: grace.retryToken })
    ).json()) as Taken;
    await recordOutcome(env.db.sql, { hostname: grace.hostname, assignmentId: assignmentOf(retried), outcome: 'configured', error: null });
  });

  it('records each assignment’s readiness, first connection, failures and end as they happen', async () => {
    const [ada] = await history('ada@example.com');
    expect(ada.ready_at).not.toBeNull();
    expect(ada.connected_at).not.toBeNull();
    expect(ada.ended_at).not.toBeNull();
    expect(ada.failures).toBe(0);
    const [grace] = await history('grace@example.com');
    expect(grace.failures).toBe(1);
    expect(grace.ready_at).not.toBeNull();
    expect(grace.connected_at).toBeNull();
    expect(grace.ended_at).toBeNull();
  });

  describe('with known times', () => {
    beforeAll(async () => {
      await env.db.pool
        .query(`UPDATE assignment_history SET assigned_at = now() - interval '3 hours', ready_at = now() - interval '3 hours' + interval '90 seconds',
        connected_at = now() - interval '3 hours' + interval '5 minutes', ended_at = now() - interval '1 hour' WHERE email = 'ada@example.com'`);
      await env.db.pool
        .query(`UPDATE assignment_history SET assigned_at = now() - interval '30 minutes', queued_at = now() - interval '35 minutes',
        ready_at = now() - interval '30 minutes' + interval '4 minutes' WHERE email = 'grace@example.com'`);
      // A participant a spreadsheet would run as a formula.
      await env.db.pool.query(
        `INSERT INTO assignment_history (hostname, email, assigned_at, ended_at) VALUES ('report-vm-3', '=HYPERLINK("http://evil.example","x")', now() - interval '1 hour', now())`,
      );
    });

    it('answers per participant in JSON: times from submit, VM-hours, waiting line, failures, resets and a cost at the table’s on-demand price', async () => {
      const response = await get('/api/report');
      expect(response.status).toBe(200);
      const report = (await response.json()) as Report;
      expect(report.price).toEqual({ usd: 0.526, source: 'g4dn.xlarge on demand in us-east-1 at $0.526/h (prices as of 2026-12-01)' });
      const [ada, grace] = report.participants;
      expect(ada).toMatchObject({
        email: 'ada@example.com',
        seconds_to_ready: 90,
        seconds_to_connect: 300,
        vm_hours: 2,
        waiting_seconds: null,
        failures: 0,
        resets: 1,
        moves: 0,
        estimated_cost_usd: 1.05,
      });
      // Her times count from joining the line, five minutes before she got the VM.
      expect(grace).toMatchObject({
        email: 'grace@example.com',
        seconds_to_ready: 540,
        seconds_to_connect: null,
        vm_hours: expect.closeTo(0.5, 2),
        waiting_seconds: 300,
        failures: 1,
        resets: 0,
        estimated_cost_usd: 0.26,
      });
      expect(report.totals).toEqual({ participants: 3, vmHours: expect.closeTo(3.5, 2), estimatedCostUsd: 1.84 });
    });

    it('downloads as CSV with every cell a spreadsheet would run as a formula defused', async () => {
      const response = await get('/api/report.csv');
      expect(response.status).toBe(200);
      expect(response.headers.get('content-disposition')).toBe('attachment; filename="lablink-report.csv"');
      const lines = (await response.text()).split('\r\n');
      expect(lines[0]).toBe(
        'email,vms,submitted_at,seconds_to_ready,seconds_to_connect,vm_hours,waiting_seconds,failures,resets,moves,estimated_cost_usd',
      );
      expect(lines[1]).toMatch(/^ada@example\.com,report-vm-\d,[\d-]+T[\d:.]+Z,90,300,2,,0,1,0,1\.05$/);
      expect(lines[3]).toMatch(/^"'=HYPERLINK\(""http:\/\/evil\.example"",""x""\)",report-vm-3,/);
    });

    it('shows on the dashboard’s report page, linked from the dashboard', async () => {
      expect(await (await get('/admin')).text()).toContain('href="/admin/report"');
      const page = await (await get('/admin/report')).text();
      expect(page).toContain('3 participants, 3.5 VM-hours, about <strong>$1.84</strong> of VM time');
      expect(page).toMatch(
        /<tr data-email="ada@example.com"><th scope="row">ada@example.com<\/th><td>report-vm-\d<\/td><td>1 min<\/td><td>5 min<\/td><td>2.00<\/td><td><span class="muted">–<\/span><\/td><td>0<\/td><td>1<\/td><td>0<\/td><td>\$1.05<\/td><\/tr>/,
      );
      expect(page).toContain('=HYPERLINK(&quot;http://evil.example&quot;,&quot;x&quot;)');
    });

    it('is for the admin only', async () => {
      for (const path of ['/admin/report', '/api/report', '/api/report.csv']) expect((await fetch(`${env.url}${path}`)).status).toBe(401);
    });
  });
});

/** The report's waiting-line column, filled by the real serving of the line (local stack, one VM, real PostgreSQL). */
describe('the after-workshop report of a participant served from the waiting line', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack();
  });
  afterAll(async () => env?.close());

  it('shows how long they waited, and no wait for one served at once', async () => {
    await recordPoll(env.db.sql, 'wait-vm-1', 600);
    const ada = (await (await submitForm(env.url, { email: 'ada@example.com', crd_command: crdCommand() })).json()) as Taken;
    const bob = await submitFormAsBrowser(env.url, { email: 'bob@example.com', crd_command: crdCommand() });
    expect(bob.location).toMatch(/^\/line\//);
    // Bob has waited seven minutes when Ada's VM is released and reset; his place's page serves the line.
    await env.db.pool.query(`UPDATE waiting_line SET joined_at = now() - interval '7 minutes' WHERE email = 'bob@example.com'`);
    expect((await fetch(`${env.url}/api/vms/${ada.hostname}/release`, { method: 'POST', headers: { authorization: ADMIN } })).status).toBe(
      200,
    );
    await recordReset(env.db.sql, ada.hostname, 'done', null);
    await recordPoll(env.db.sql, ada.hostname, 600);
    expect((await fetch(new URL(bob.location, env.url), { headers: { cookie: bob.cookies } })).status).toBe(200);

    const report = (await (await fetch(`${env.url}/api/report`, { headers: { authorization: ADMIN } })).json()) as Report;
    const [first, second] = report.participants;
    expect(first).toMatchObject({ email: 'ada@example.com', waiting_seconds: null });
    expect(second).toMatchObject({ email: 'bob@example.com', vms: ada.hostname, waiting_seconds: expect.any(Number) });
    expect(second.waiting_seconds).toBeGreaterThanOrEqual(420);
    expect(second.waiting_seconds).toBeLessThan(480);
  });
});
