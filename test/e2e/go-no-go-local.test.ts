import path from 'node:path';
import { CheckReport } from '../../core/go-no-go';
import { PROBE_EMAIL } from '../../contract/wire';
import { useDeployments, untilFree } from '../support/deployment';
import { TEST_ADMIN_SECRET, waitFor } from '../support/fixtures';
import { spawnCapturing } from '../support/processes';
import { freeCount } from '../support/stack';

const ROOT = path.join(__dirname, '..', '..');
const admin = { authorization: `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}` };

/** `npm run check` as an instructor runs it, against a LabLink by URL. */
async function runCheck(args: string[], secret = TEST_ADMIN_SECRET): Promise<{ code: number | null; output: string }> {
  const run = spawnCapturing('npm', ['run', '--silent', 'check', '--', ...args], {
    cwd: ROOT,
    env: { ...process.env, LABLINK_ADMIN_SECRET: secret },
  });
  const code = await run.exited;
  return { code, output: run.output() };
}

const deployments = useDeployments();

async function adminJson<T>(url: string): Promise<T> {
  return (await (await fetch(url, { headers: admin })).json()) as T;
}

describe('npm run check -- --url (against local mode: real PostgreSQL, real agents)', () => {
  it('says GO for 3 healthy free VMs, sends the probe through start-host and back, and leaves no participant behind', async () => {
    const { url } = await deployments.start([{}, {}, {}]);
    await untilFree(url, 3);

    const { code, output } = await runCheck(['--url', url, '--expect-vms', '3', '--probe-timeout', '60']);
    expect(output).toMatch(/^PASS +vms +all 3 VMs registered, healthy, set up and free$/m);
    expect(output).toMatch(/^PASS +probe +lablink-vm-\d ran start-host and Google refused the probe's code/m);
    expect(output).toMatch(/^PASS +probe +lablink-vm-\d was released, reset by its agent, and is free again$/m);
    expect(output.trimEnd().split('\n').pop()).toBe('GO');
    expect(code).toBe(0);

    // The probe is nobody: not in the CSV, not holding a VM, not taken from the free count.
    const csv = await (await fetch(`${url}/api/vms.csv`, { headers: admin })).text();
    expect(csv).not.toContain(PROBE_EMAIL);
    const { vms: listed } = await adminJson<{ vms: { email: string | null; log_errors: number }[] }>(`${url}/api/vms`);
    expect(listed.filter((vm) => vm.email !== null)).toEqual([]);
    // Google's refusal of the probe is the expected answer, not an error in a VM's log.
    expect(listed.map((vm) => vm.log_errors)).toEqual([0, 0, 0]);
    expect(await freeCount(url)).toBe(3);
    // The dashboard shows the result.
    const page = await (await fetch(`${url}/admin`, { headers: admin })).text();
    expect(page).toMatch(/Last check: <strong>GO<\/strong>/);
  });

  it('prints the same result as JSON with --json', async () => {
    const { url } = await deployments.start([{}]);
    await untilFree(url, 1);
    const { code, output } = await runCheck(['--url', url, '--json', '--probe-timeout', '60']);
    const report = JSON.parse(output) as CheckReport;
    expect(report).toMatchObject({ go: true, problems: 0 });
    expect(report.lines.map((line) => line.name)).toEqual(['https', 'form', 'admin', 'expiry', 'vms', 'probe', 'probe']);
    expect(code).toBe(0);
  });

  it('says NO-GO when no VM has registered, and the dashboard shows it', async () => {
    const { url } = await deployments.start([]);
    const { code, output } = await runCheck(['--url', url]);
    expect(output).toMatch(/^FAIL +vms +no VM has registered$/m);
    expect(output).toMatch(/^FAIL +probe +not sent: no VM is free$/m);
    expect(output.trimEnd().split('\n').pop()).toBe('NO-GO (2 problems)');
    expect(code).toBe(1);
    const page = await (await fetch(`${url}/admin`, { headers: admin })).text();
    expect(page).toContain('Last check: <strong>NO-GO (2 problems)</strong>');
    expect(page).toContain('vms: no VM has registered');
  });

  it('says NO-GO naming the VM whose setup failed, while the probe still goes through a good one', async () => {
    const { url, db } = await deployments.start([{}, { setup: { check: 'echo "no such package" >&2; exit 1' } }]);
    await untilFree(url, 1);
    await waitFor(
      async () => (await db.pool.query(`SELECT 1 FROM vms WHERE hostname = 'lablink-vm-2' AND failed_at IS NOT NULL`)).rowCount === 1,
      'the setup to fail',
    );

    const { code, output } = await runCheck(['--url', url, '--expect-vms', '2', '--probe-timeout', '60']);
    expect(output).toMatch(/^FAIL +vm lablink-vm-2 +Setup failed/m);
    expect(output).toContain('Re-run setup');
    expect(output).toMatch(/^PASS +probe +lablink-vm-1 ran start-host/m);
    expect(output.trimEnd().split('\n').pop()).toBe('NO-GO (1 problem)');
    expect(code).toBe(1);
  });

  it('says NO-GO when expiresAt has passed', async () => {
    const { url } = await deployments.start([{}], { expiresAt: '2026-01-01T18:00:00Z' });
    await untilFree(url, 1);
    const { code, output } = await runCheck(['--url', url, '--probe-timeout', '60']);
    expect(output).toMatch(/^FAIL +expiry +expiresAt 2026-01-01T18:00:00Z has passed/m);
    expect(output).toContain('-c expiresAt=');
    expect(output.trimEnd().split('\n').pop()).toBe('NO-GO (1 problem)');
    expect(code).toBe(1);
  });

  it("sends the probe with the workshop's access code, and says what to pass when it is missing", async () => {
    const { url } = await deployments.start([{}], { accessCode: 'room-42' });
    await untilFree(url, 1);
    const without = await runCheck(['--url', url, '--probe-timeout', '60']);
    expect(without.output).toMatch(/^FAIL +probe +the form did not give the probe a VM: 403 /m);
    expect(without.output).toContain("Pass the workshop's access code with --access-code.");
    expect(without.code).toBe(1);
    const withCode = await runCheck(['--url', url, '--access-code', 'room-42', '--probe-timeout', '60']);
    expect(withCode.output.trimEnd().split('\n').pop()).toBe('GO');
    expect(withCode.code).toBe(0);
  });

  it("says NO-GO when the probe's VM never answers, and when it never comes back from its reset", async () => {
    const { url, db, vms } = await deployments.start([{}]);
    await untilFree(url, 1);
    // The agent dies while the allocator still counts its last poll: the VM looks free but nobody runs start-host.
    await vms[0].stop('SIGKILL');
    await db.pool.query(`UPDATE vms SET alive_until = now() + interval '5 minutes'`);
    const { code, output } = await runCheck(['--url', url, '--probe-timeout', '3']);
    expect(output).toMatch(/^FAIL +probe +lablink-vm-1 got the probe but did not report start-host's answer within 3 s$/m);
    expect(output).toMatch(/^FAIL +probe +lablink-vm-1 did not come back free within 3 s of its release$/m);
    expect(output.trimEnd().split('\n').pop()).toBe('NO-GO (2 problems)');
    expect(code).toBe(1);
    // Released all the same: the probe holds nothing.
    expect((await db.pool.query(`SELECT state, email FROM vms`)).rows).toEqual([{ state: 'resetting', email: null }]);
  });

  it('says NO-GO when the admin secret is refused, and sends no probe', async () => {
    const { url, db } = await deployments.start([{}]);
    await untilFree(url, 1);
    const { code, output } = await runCheck(['--url', url], 'not-the-admin-secret-0123');
    expect(output).toMatch(/^FAIL +admin +the admin secret was refused$/m);
    expect(output).not.toMatch(/probe/);
    expect(code).toBe(1);
    expect((await db.pool.query(`SELECT 1 FROM vms WHERE assignment_id IS NOT NULL`)).rowCount).toBe(0);
  });

  it('fails a plain-HTTP address that is not this machine, and a form that does not answer', async () => {
    // .invalid never resolves (RFC 2606): the form cannot answer.
    const { code, output } = await runCheck(['--url', 'http://lablink.invalid']);
    expect(output).toMatch(/^FAIL +https +the form is served over plain HTTP at lablink\.invalid/m);
    expect(output).toMatch(/^FAIL +form +the form does not answer at http:\/\/lablink\.invalid\//m);
    expect(output.trimEnd().split('\n').pop()).toBe('NO-GO (2 problems)');
    expect(code).toBe(1);
  });

  it('refuses to run without a usable target, with exit status 2 and the usage', async () => {
    const { code, output } = await runCheck(['--url', 'ftp://example.com']);
    expect(output).toContain('--url must be an http(s) address');
    expect(output).toContain('Usage: npm run check');
    expect(code).toBe(2);
  });
});
