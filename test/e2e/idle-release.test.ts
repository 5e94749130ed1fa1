import { IdleReleasePolicy } from '../../core/idle-release';
import { recordHealth } from '../../store/health';
import { idleDeadlines, releaseIdleVms } from '../../store/idle-deadlines';
import { resetVms } from '../../store/reset';
import { recordPoll } from '../../store/vms';
import { TEST_ADMIN_SECRET, crdCommand } from '../support/fixtures';
import { TestStack, startTestStack, submitForm } from '../support/stack';

const POLICY: IdleReleasePolicy = { failedAfterSeconds: 600, unconnectedAfterSeconds: 1200, warnBeforeSeconds: 600 };
const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}` };

type Taken = { hostname: string; status: string; retryToken: string };

/** Nothing held by nobody, through the real local stack and PostgreSQL; the sweep is run by hand instead of on its timer. */
describe('VMs held by nobody go back to the pool', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack({ idleRelease: POLICY, idleSweepIntervalMs: 3_600_000, addressLimit: null });
  });
  afterAll(async () => env?.close());
  beforeEach(async () => {
    await env.db.pool.query('DELETE FROM vms');
  });

  const take = async (email: string): Promise<Taken> => {
    const response = await submitForm(env.url, { email, crd_command: crdCommand() });
    expect(response.status).toBe(200);
    return (await response.json()) as Taken;
  };
  const age = (hostname: string, column: 'delivered_at' | 'configured_at', minutes: number, state: 'error' | 'configured') =>
    env.db.pool.query(`UPDATE vms SET state = $2, ${column} = now() - make_interval(mins => $3) WHERE hostname = $1`, [
      hostname,
      state,
      minutes,
    ]);
  const vmPage = async (taken: Taken) => (await fetch(`${env.url}/vm/${taken.status.split('/').pop()}`)).text();
  const dashboard = async () => (await fetch(`${env.url}/admin`, { headers: ADMIN })).text();
  const vmRow = async (hostname: string) =>
    (await env.db.pool.query('SELECT state, email FROM vms WHERE hostname = $1', [hostname])).rows[0];

  it('a failed setup with no new command: the page and the dashboard count down, then the VM is released and reset', async () => {
    await recordPoll(env.db.sql, 'idle-vm-1', 600);
    const taken = await take('failed@example.com');
    await age('idle-vm-1', 'delivered_at', 4, 'error');
    expect(await vmPage(taken)).toMatch(/Submit a new command within <strong>6 min<\/strong>: after that, idle-vm-1 goes back to the pool/);
    expect(await dashboard()).toContain('idle-vm-1: setup failed, no new command, 6 min left');
    expect(await releaseIdleVms(env.db.sql, POLICY)).toEqual([]);

    await age('idle-vm-1', 'delivered_at', 11, 'error');
    expect(await releaseIdleVms(env.db.sql, POLICY)).toEqual([
      expect.objectContaining({ hostname: 'idle-vm-1', reason: 'failed', resetting: true }),
    ]);
    expect(await vmRow('idle-vm-1')).toEqual({ state: 'resetting', email: null });
    expect(await vmPage(taken)).toContain('Your VM was taken back');
    expect(await dashboard()).not.toContain('Going back to the pool');
  });

  it('ready but never connected: warned in the last 10 minutes, released after 20; a VM the probe saw in use, or without a probe, stays', async () => {
    for (const name of ['idle-vm-1', 'idle-vm-2', 'idle-vm-3']) await recordPoll(env.db.sql, name, 600);
    const idle = await take('idle@example.com');
    await take('working@example.com');
    await take('noprobe@example.com');
    await recordHealth(env.db.sql, 'idle-vm-1', { inUse: false });
    await recordHealth(env.db.sql, 'idle-vm-2', { inUse: true });
    await recordHealth(env.db.sql, 'idle-vm-2', { inUse: false });
    for (const name of ['idle-vm-1', 'idle-vm-2', 'idle-vm-3']) await age(name, 'configured_at', 5, 'configured');
    expect(await vmPage(idle)).not.toContain('id="idle-release"');
    expect(await dashboard()).toContain('idle-vm-1: never connected, 15 min left');

    await age('idle-vm-1', 'configured_at', 15, 'configured');
    expect(await vmPage(idle)).toMatch(/You have not connected to idle-vm-1 yet\. Connect within <strong>5 min<\/strong>/);

    for (const name of ['idle-vm-1', 'idle-vm-2', 'idle-vm-3']) await age(name, 'configured_at', 21, 'configured');
    expect((await releaseIdleVms(env.db.sql, POLICY)).map((vm) => vm.hostname)).toEqual(['idle-vm-1']);
    expect(await vmRow('idle-vm-1')).toEqual({ state: 'resetting', email: null });
    expect(await vmRow('idle-vm-2')).toEqual({ state: 'configured', email: 'working@example.com' });
    expect(await vmRow('idle-vm-3')).toEqual({ state: 'configured', email: 'noprobe@example.com' });
  });

  it('both rules off: nothing is released', async () => {
    const off: IdleReleasePolicy = { failedAfterSeconds: null, unconnectedAfterSeconds: null, warnBeforeSeconds: 600 };
    await recordPoll(env.db.sql, 'idle-vm-1', 600);
    await take('kept@example.com');
    await age('idle-vm-1', 'delivered_at', 60, 'error');
    expect(await releaseIdleVms(env.db.sql, off)).toEqual([]);
    expect(await vmRow('idle-vm-1')).toEqual({ state: 'error', email: 'kept@example.com' });
  });

  it('a participant retrying at the same moment the sweep releases: they end with exactly one VM, the one they were told, never a wiped one', async () => {
    for (let round = 0; round < 8; round += 1) {
      await env.db.pool.query('DELETE FROM vms');
      await recordPoll(env.db.sql, 'race-vm-1', 600);
      const taken = await take(`race${round}@example.com`);
      await recordPoll(env.db.sql, 'race-vm-2', 600);
      await age('race-vm-1', 'delivered_at', 11, 'error');
      const [retry, released] = await Promise.all([
        submitForm(env.url, { email: `race${round}@example.com`, crd_command: crdCommand(), retry_token: taken.retryToken }),
        releaseIdleVms(env.db.sql, POLICY),
      ]);
      expect(retry.status).toBe(200);
      const answer = (await retry.json()) as { hostname: string };
      const { rows } = await env.db.pool.query(`SELECT hostname, state FROM vms WHERE email = $1`, [`race${round}@example.com`]);
      expect(rows).toEqual([{ hostname: answer.hostname, state: 'assigned' }]);
      if (released.length > 0) {
        expect(answer.hostname).toBe('race-vm-2');
        expect(await vmRow('race-vm-1')).toEqual({ state: 'resetting', email: null });
      } else {
        expect(answer.hostname).toBe('race-vm-1');
      }
    }
  });

  it('a retry that commits between the sweep finding the VM due and releasing it keeps the VM', async () => {
    await recordPoll(env.db.sql, 'race-vm-1', 600);
    const taken = await take('late@example.com');
    await age('race-vm-1', 'delivered_at', 11, 'error');
    const due = await idleDeadlines(env.db.sql, POLICY);
    expect(due.map((deadline) => deadline.hostname)).toEqual(['race-vm-1']);
    const retry = await submitForm(env.url, { email: 'late@example.com', crd_command: crdCommand(), retry_token: taken.retryToken });
    expect(((await retry.json()) as { hostname: string }).hostname).toBe('race-vm-1');
    expect(await resetVms(env.db.sql, { scope: 'idle', assignmentIds: due.map((deadline) => deadline.assignmentId) })).toEqual([]);
    expect(await vmRow('race-vm-1')).toEqual({ state: 'assigned', email: 'late@example.com' });
  });

  it('a participant who connects between the sweep finding the VM due and releasing it keeps the VM', async () => {
    await recordPoll(env.db.sql, 'race-vm-1', 600);
    await take('slow@example.com');
    await recordHealth(env.db.sql, 'race-vm-1', { inUse: false });
    await age('race-vm-1', 'configured_at', 21, 'configured');
    const due = await idleDeadlines(env.db.sql, POLICY);
    await recordHealth(env.db.sql, 'race-vm-1', { inUse: true });
    expect(await resetVms(env.db.sql, { scope: 'idle', assignmentIds: due.map((deadline) => deadline.assignmentId) })).toEqual([]);
    expect(await vmRow('race-vm-1')).toEqual({ state: 'configured', email: 'slow@example.com' });
  });
});
