import { DescribeInstancesCommand, EC2Client, RebootInstancesCommand } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { Ec2Rebooter, FleetDoctor, embeddedMetricsSink } from '../../allocator/fleet-doctor';
import { silentLogger } from '../../core/log';
import { findAssignment, requestVm } from '../../store/assignment';
import { FleetCounts, RepairPolicy, moveParticipant, recordHealth } from '../../store/health';
import { recordReset, resetVms } from '../../store/reset';
import { countFreeVms, recordPoll } from '../../store/vms';
import { TestDatabase, createTestDatabase } from '../support/database';
import { crdCommand } from '../support/fixtures';

const POLICY: RepairPolicy = { staleSeconds: 60, repairAfterSeconds: 300, maxReboots: 2, cooldownSeconds: 600 };
const BEAT = { bootId: 'boot-1', uptimeSeconds: 100, crdRunning: false, diskFreeMb: 10_000 };
const goneInstances = new Set<string>();

describe('fleet doctor against real PostgreSQL (EC2 RebootInstances mocked with aws-sdk-client-mock)', () => {
  let db: TestDatabase;
  const ec2 = new EC2Client({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const ec2Mock = mockClient(ec2);
  let metrics: FleetCounts[];
  let doctor: FleetDoctor;

  const row = async (hostname: string) => (await db.pool.query('SELECT * FROM vms WHERE hostname = $1', [hostname])).rows[0];
  const ageUnhealthy = () =>
    db.pool.query(
      `UPDATE vms SET unhealthy_since = now() - interval '10 minutes', last_reboot_at = last_reboot_at - interval '20 minutes' WHERE unhealthy_since IS NOT NULL`,
    );
  const rebooted = () =>
    ec2Mock
      .commandCalls(RebootInstancesCommand)
      .flatMap((call) => call.args[0].input.InstanceIds ?? [])
      .sort();

  beforeEach(async () => {
    db = await createTestDatabase();
    ec2Mock.reset();
    ec2Mock.on(RebootInstancesCommand).resolves({});
    ec2Mock.on(DescribeInstancesCommand).callsFake(async (input: { InstanceIds: string[] }) => ({
      Reservations: [
        {
          Instances: [
            { InstanceId: input.InstanceIds[0], State: { Name: goneInstances.has(input.InstanceIds[0]) ? 'terminated' : 'running' } },
          ],
        },
      ],
    }));
    goneInstances.clear();
    metrics = [];
    doctor = new FleetDoctor({
      sql: db.sql,
      policy: POLICY,
      rebooter: new Ec2Rebooter(ec2),
      metrics: (counts) => metrics.push(counts),
      log: silentLogger,
      intervalMs: 60_000,
    });
    for (const [name, instance] of [
      ['healthy', 'i-01'],
      ['silent', 'i-02'],
      ['gpu-broken', 'i-03'],
      ['local-silent', null],
      ['spare', 'i-05'],
    ] as const) {
      await recordPoll(db.sql, name, 600, instance);
      await recordHealth(db.sql, name, { heartbeat: BEAT });
    }
    await recordHealth(db.sql, 'gpu-broken', { gpu: { status: 'failed', detail: 'Unable to determine the device handle: GPU is lost' } });
    await db.pool.query(
      `UPDATE vms SET health_reported_at = now() - interval '5 minutes', last_seen = now() - interval '5 minutes' WHERE hostname IN ('silent', 'local-silent')`,
    );
  });
  afterEach(async () => db.drop());

  it('reboots VMs unhealthy for too long, then fails them after the last reboot; healthy ones are left alone', async () => {
    await doctor.tick();
    expect((await row('silent')).unhealthy_since).not.toBeNull();
    expect((await row('healthy')).unhealthy_since).toBeNull();
    expect(rebooted()).toEqual([]);

    await ageUnhealthy();
    await doctor.tick();
    expect(rebooted()).toEqual(['i-02', 'i-03']);
    expect((await row('silent')).reboot_count).toBe(1);
    // A local VM cannot be rebooted: it goes straight out of the pool.
    expect(await row('local-silent')).toMatchObject({ failure: 'The agent stopped reporting' });
    expect((await row('local-silent')).failed_at).not.toBeNull();

    await doctor.tick();
    expect(rebooted()).toEqual(['i-02', 'i-03']);

    await ageUnhealthy();
    await doctor.tick();
    expect(rebooted()).toEqual(['i-02', 'i-02', 'i-03', 'i-03']);
    await ageUnhealthy();
    await doctor.tick();
    expect(rebooted()).toHaveLength(4);
    expect(await row('silent')).toMatchObject({ reboot_count: 2, failure: 'The agent stopped reporting' });
    expect(await row('gpu-broken')).toMatchObject({ failure: 'GPU check failed: Unable to determine the device handle: GPU is lost' });
    expect(await row('healthy')).toMatchObject({ failed_at: null, reboot_count: 0 });
    expect(metrics.at(-1)).toEqual({ total: 5, free: 2, assigned: 0, stale: 0, newly_stale: 0, unhealthy: 0, failed: 3 });
  });

  it('never hands a failed VM to a participant', async () => {
    await db.pool.query(`UPDATE vms SET failed_at = now(), failure = 'broken' WHERE hostname <> 'spare'`);
    const first = await requestVm(db.sql, { email: 'a@example.com', crdCommand: crdCommand() });
    expect(first).toMatchObject({ kind: 'assigned', hostname: 'spare' });
    expect(await requestVm(db.sql, { email: 'b@example.com', crdCommand: crdCommand() })).toEqual({ kind: 'no_vm_free' });
  });

  it('marks a VM healthy again when its heartbeats come back', async () => {
    await doctor.tick();
    expect((await row('silent')).unhealthy_since).not.toBeNull();
    await recordHealth(db.sql, 'silent', { heartbeat: BEAT });
    await doctor.tick();
    expect((await row('silent')).unhealthy_since).toBeNull();
  });

  it('gives a VM its reboots again after a healthy spell longer than the cool-down, not before', async () => {
    await doctor.tick();
    await ageUnhealthy();
    await doctor.tick();
    expect(await row('silent')).toMatchObject({ reboot_count: 1, failed_at: null });
    await recordHealth(db.sql, 'silent', { heartbeat: BEAT });
    await doctor.tick();
    // Healthy again, but rebooted moments ago: the count stays, so a flapping VM still ends up failed.
    expect(await row('silent')).toMatchObject({ reboot_count: 1, unhealthy_since: null });
    await db.pool.query(`UPDATE vms SET last_reboot_at = now() - interval '20 minutes' WHERE hostname = 'silent'`);
    await doctor.tick();
    expect(await row('silent')).toMatchObject({ reboot_count: 0, unhealthy_since: null });

    await db.pool.query(`UPDATE vms SET health_reported_at = now() - interval '5 minutes' WHERE hostname = 'silent'`);
    await doctor.tick();
    await ageUnhealthy();
    await doctor.tick();
    expect(rebooted().filter((instance) => instance === 'i-02')).toEqual(['i-02', 'i-02']);
    expect(await row('silent')).toMatchObject({ reboot_count: 1, failed_at: null });
  });

  it('retires a VM whose instance EC2 no longer knows (DescribeInstances NotFound, EC2 mocked with aws-sdk-client-mock)', async () => {
    const notFound = Object.assign(new Error("The instance ID 'i-02' does not exist"), { name: 'InvalidInstanceID.NotFound' });
    ec2Mock.on(DescribeInstancesCommand, { InstanceIds: ['i-02'] }).rejects(notFound);
    expect(await new Ec2Rebooter(ec2).reboot('i-02')).toBe('gone');
    await doctor.tick();
    await ageUnhealthy();
    await doctor.tick();
    expect(rebooted()).toEqual(['i-03']);
    expect(await row('silent')).toMatchObject({ state: 'retired', failed_at: null });
  });

  it('does not retire a VM when EC2 fails for another reason (EC2 mocked with aws-sdk-client-mock): it is neither retired nor rebooted', async () => {
    ec2Mock
      .on(DescribeInstancesCommand, { InstanceIds: ['i-02'] })
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'RequestLimitExceeded' }));
    await expect(new Ec2Rebooter(ec2).reboot('i-02')).rejects.toThrow('Rate exceeded');
    await doctor.tick();
    await ageUnhealthy();
    await doctor.tick();
    expect(rebooted()).toEqual(['i-03']);
    expect((await row('silent')).state).toBe('waiting');
  });

  it('repairs nothing while most of the fleet is silent at once (an outage, not broken VMs)', async () => {
    await db.pool.query(`UPDATE vms SET health_reported_at = now() - interval '5 minutes' WHERE hostname <> 'healthy'`);
    await doctor.tick();
    await ageUnhealthy();
    await doctor.tick();
    expect(rebooted()).toEqual([]);
    expect((await db.pool.query('SELECT count(*)::int AS failed FROM vms WHERE failed_at IS NOT NULL')).rows[0].failed).toBe(0);
  });

  it('leaves a VM in use to the admin, and retires a VM whose instance is gone', async () => {
    await recordHealth(db.sql, 'gpu-broken', { inUse: true });
    goneInstances.add('i-02');
    await doctor.tick();
    await ageUnhealthy();
    await doctor.tick();
    // Terminated instances are retired, not rebooted (EC2 would silently ignore the reboot).
    expect(rebooted()).toEqual([]);
    expect((await row('gpu-broken')).reboot_count).toBe(0);
    expect((await row('silent')).state).toBe('retired');
    expect(metrics.at(-1)).toMatchObject({ total: 4 });
    // The fleet grows back: the same name polls again and is an ordinary free VM.
    await recordPoll(db.sql, 'silent', 600, 'i-22');
    expect(await row('silent')).toMatchObject({ state: 'waiting', failed_at: null, email: null });
    expect(await countFreeVms(db.sql)).toBeGreaterThan(0);
  });

  it('retires a gone VM that had a participant, and their page says the VM was taken back instead of going blank', async () => {
    const { rows } = await db.pool.query(
      `UPDATE vms SET state = 'configured', email = 'gone@example.com', assignment_id = gen_random_uuid() WHERE hostname = 'silent' RETURNING assignment_id`,
    );
    goneInstances.add('i-02');
    await doctor.tick();
    await ageUnhealthy();
    await doctor.tick();
    expect((await row('silent')).state).toBe('retired');
    expect(await findAssignment(db.sql, rows[0].assignment_id)).toMatchObject({ hostname: 'silent', progress: 'released' });
  });

  it('does not let VMs long gone look like an outage: repairs go on', async () => {
    await db.pool.query(
      `UPDATE vms SET health_reported_at = now() - interval '3 hours' WHERE hostname IN ('silent', 'local-silent', 'spare')`,
    );
    await doctor.tick();
    await ageUnhealthy();
    await doctor.tick();
    expect(rebooted()).toEqual(['i-02', 'i-03', 'i-05']);
  });

  it('honours "in use" only while the VM still reports', async () => {
    for (const name of ['extra-1', 'extra-2', 'extra-3']) {
      await recordPoll(db.sql, name, 600, `i-${name}`);
      await recordHealth(db.sql, name, { heartbeat: BEAT });
    }
    await recordHealth(db.sql, 'silent', { inUse: true });
    await db.pool.query(`UPDATE vms SET health_reported_at = now() - interval '5 minutes' WHERE hostname = 'silent'`);
    await doctor.tick();
    await ageUnhealthy();
    await doctor.tick();
    expect(rebooted()).toContain('i-02');
  });

  it('two allocators checking at once reboot each VM once', async () => {
    await doctor.tick();
    await ageUnhealthy();
    const second = new FleetDoctor({ sql: db.sql, policy: POLICY, rebooter: new Ec2Rebooter(ec2), log: silentLogger, intervalMs: 60_000 });
    await Promise.all([doctor.tick(), second.tick()]);
    expect(rebooted()).toEqual(['i-02', 'i-03']);
  });

  it('moves a participant off a failed VM: new VM, new PIN, old link leads to the new VM', async () => {
    await db.pool.query(`UPDATE vms SET alive_until = now() WHERE hostname NOT IN ('healthy', 'spare')`);
    const assigned = await requestVm(db.sql, { email: 'mover@example.com', crdCommand: crdCommand() });
    if (assigned.kind !== 'assigned') throw new Error('expected an assignment');
    const moved = await moveParticipant(db.sql, assigned.hostname);
    const target = assigned.hostname === 'healthy' ? 'spare' : 'healthy';
    expect(moved).toEqual({ kind: 'moved', hostname: target, email: 'mover@example.com' });
    // Nothing failed on it: once its agent has reset it, it is free again (no failure mark keeps it out).
    expect(await row(assigned.hostname)).toMatchObject({ state: 'resetting', email: null, pin: null, failure: null });
    const view = await findAssignment(db.sql, assigned.assignmentId);
    expect(view).toMatchObject({ hostname: target, movedFrom: assigned.hostname, progress: 'failed' });
    expect(view!.pin).not.toBe(assigned.pin);
    // A new command with the same email configures the new VM.
    expect(
      await requestVm(db.sql, { email: 'mover@example.com', crdCommand: crdCommand(), retryToken: assigned.retryToken }),
    ).toMatchObject({
      kind: 'assigned',
      hostname: target,
      outcome: 'retried',
    });
    expect(await moveParticipant(db.sql, target)).toEqual({ kind: 'no_vm_free' });
    expect(await moveParticipant(db.sql, 'spare-or-none')).toEqual({ kind: 'no_participant' });
  });

  it('a moved participant’s old link says the VM was taken back once their new VM is released, reset and reused', async () => {
    await db.pool.query(`UPDATE vms SET alive_until = now() WHERE hostname NOT IN ('healthy', 'spare')`);
    const x = await requestVm(db.sql, { email: 'x@example.com', crdCommand: crdCommand() });
    if (x.kind !== 'assigned') throw new Error('expected an assignment');
    const moved = await moveParticipant(db.sql, x.hostname);
    if (moved.kind !== 'moved') throw new Error('expected a move');
    await resetVms(db.sql, { scope: 'one', hostname: moved.hostname });
    // Until its agent says the reset is done, the VM is no one's to take.
    expect(await requestVm(db.sql, { email: 'early@example.com', crdCommand: crdCommand() })).toEqual({ kind: 'no_vm_free' });
    expect(await recordReset(db.sql, moved.hostname, 'done', null)).toEqual({ failed: false, failure: null });
    const y = await requestVm(db.sql, { email: 'y@example.com', crdCommand: crdCommand() });
    expect(y).toMatchObject({ kind: 'assigned', hostname: moved.hostname });
    expect(await findAssignment(db.sql, x.assignmentId)).toMatchObject({ hostname: moved.hostname, progress: 'released', pin: '' });
    expect(await findAssignment(db.sql, (y as { assignmentId: string }).assignmentId)).toMatchObject({ movedFrom: null });
  });

  it('publishes the counts as CloudWatch embedded metrics', () => {
    const lines: string[] = [];
    embeddedMetricsSink('LabLinkTest', (line) => lines.push(line))({
      total: 5,
      free: 2,
      assigned: 1,
      stale: 1,
      newly_stale: 1,
      unhealthy: 1,
      failed: 1,
    });
    const metric = JSON.parse(lines[0]);
    expect(metric).toMatchObject({ Fleet: 'LabLinkTest', FreeVms: 2, StaleVms: 1, FailedVms: 1, UnhealthyVms: 1, AssignedVms: 1 });
    expect(metric._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'LabLink', Dimensions: [['Fleet']] });
  });
});
