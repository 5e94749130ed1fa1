import { AutoScalingClient, SetDesiredCapacityCommand, TerminateInstanceInAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
  RebootInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { Ec2Rebooter, FleetDoctor } from '../../allocator/fleet-doctor';
import { AwsSparesGroup } from '../../allocator/spares';
import { REPLACED_TAG, SETUP_FAILURE_PREFIX } from '../../contract/wire';
import { silentLogger } from '../../core/log';
import { requestVm } from '../../store/assignment';
import { countWarmingVms, warmPoolVms } from '../../store/fleet-power';
import { RepairPolicy, recordHealth } from '../../store/health';
import { CLAIM_SPARE_NAME, claimSpareName, countSparesWanted } from '../../store/replacement';
import { resetVms } from '../../store/reset';
import { toPositional } from '../../store/sql';
import { countFreeVms, recordPoll } from '../../store/vms';
import { TestDatabase, createTestDatabase } from '../support/database';
import { crdCommand } from '../support/fixtures';

const POLICY: RepairPolicy = { staleSeconds: 60, repairAfterSeconds: 300, maxReboots: 0, cooldownSeconds: 600 };
const BEAT = { bootId: 'boot-1', uptimeSeconds: 100, crdRunning: true, diskFreeMb: 10_000 };
const GROUP = 'LabLinkTest-Spares';
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
/** Instances EC2 says are terminated. */
const goneInstances = new Set<string>();

describe('replacing failed VMs with spares, against real PostgreSQL (EC2 and Auto Scaling mocked with aws-sdk-client-mock)', () => {
  let db: TestDatabase;
  const ec2 = new EC2Client({ region: 'eu-west-1', credentials });
  const autoScaling = new AutoScalingClient({ region: 'eu-west-1', credentials });
  const ec2Mock = mockClient(ec2);
  const autoScalingMock = mockClient(autoScaling);
  let doctor: FleetDoctor;

  const row = async (hostname: string) => (await db.pool.query('SELECT * FROM vms WHERE hostname = $1', [hostname])).rows[0];
  /** The VM stops reporting for longer than the repair policy waits: with no reboots allowed, the next check fails it. */
  const goSilent = async (hostname: string) => {
    await db.pool.query(`UPDATE vms SET health_reported_at = now() - interval '10 minutes', alive_until = now() WHERE hostname = $1`, [
      hostname,
    ]);
    await doctor.tick();
    await db.pool.query(`UPDATE vms SET unhealthy_since = now() - interval '10 minutes' WHERE hostname = $1`, [hostname]);
  };
  const desired = () => autoScalingMock.commandCalls(SetDesiredCapacityCommand).map((call) => call.args[0].input.DesiredCapacity);
  const register = async (hostname: string, instanceId: string) => {
    await recordPoll(db.sql, hostname, 600, instanceId);
    await recordHealth(db.sql, hostname, { heartbeat: BEAT });
  };

  beforeEach(async () => {
    db = await createTestDatabase();
    ec2Mock.reset();
    autoScalingMock.reset();
    goneInstances.clear();
    ec2Mock.on(DescribeInstancesCommand).callsFake(async (input: { InstanceIds: string[] }) => ({
      Reservations: [
        {
          Instances: [
            { InstanceId: input.InstanceIds[0], State: { Name: goneInstances.has(input.InstanceIds[0]) ? 'terminated' : 'running' } },
          ],
        },
      ],
    }));
    ec2Mock.on(ModifyInstanceAttributeCommand).resolves({});
    ec2Mock.on(RebootInstancesCommand).resolves({});
    ec2Mock.on(CreateTagsCommand).resolves({});
    ec2Mock.on(StopInstancesCommand).resolves({});
    autoScalingMock.on(SetDesiredCapacityCommand).resolves({});
    autoScalingMock.on(TerminateInstanceInAutoScalingGroupCommand).resolves({});
    doctor = new FleetDoctor({
      sql: db.sql,
      policy: POLICY,
      rebooter: new Ec2Rebooter(ec2),
      spares: { group: new AwsSparesGroup(ec2, autoScaling, GROUP), maxReplacements: 2 },
      log: silentLogger,
      intervalMs: 60_000,
    });
    await register('lablink-1', 'i-0000000000000001');
    await register('lablink-2', 'i-0000000000000002');
  });
  afterEach(async () => db.drop());

  it('takes a failed VM out of the fleet, asks the spares group for one more, and the spare takes over its name', async () => {
    await doctor.tick();
    expect(desired()).toEqual([0]);

    await goSilent('lablink-2');
    await doctor.tick();
    expect(await row('lablink-2')).toMatchObject({ failure: 'The agent stopped reporting', replacement_count: 1 });
    expect((await row('lablink-2')).replacement_requested_at).not.toBeNull();
    // The named VM is tagged out of the fleet before it is stopped; CloudFormation keeps it, stopped.
    const tags = ec2Mock.commandCalls(CreateTagsCommand).map((call) => call.args[0].input);
    expect(tags).toEqual([{ Resources: ['i-0000000000000002'], Tags: [{ Key: REPLACED_TAG, Value: expect.any(String) }] }]);
    expect(ec2Mock.commandCalls(StopInstancesCommand).map((call) => call.args[0].input.InstanceIds)).toEqual([['i-0000000000000002']]);
    // Protected while a participant was on it? Not any more: a smaller fleet or `cdk destroy` can delete it.
    expect(ec2Mock.commandCalls(ModifyInstanceAttributeCommand).map((call) => call.args[0].input)).toEqual([
      { InstanceId: 'i-0000000000000002', DisableApiTermination: { Value: false } },
    ]);
    expect(autoScalingMock.commandCalls(SetDesiredCapacityCommand).at(-1)?.args[0].input).toEqual({
      AutoScalingGroupName: GROUP,
      DesiredCapacity: 1,
      HonorCooldown: false,
    });
    // The form tells the next participant a VM is on its way rather than "none free".
    expect(await countWarmingVms(db.sql)).toBe(1);

    expect(await claimSpareName(db.sql, 'i-0spare00000000001')).toBe('lablink-2');
    // Asked again (its boot script retried), the spare keeps its name; a second spare gets none.
    expect(await claimSpareName(db.sql, 'i-0spare00000000001')).toBe('lablink-2');
    expect(await claimSpareName(db.sql, 'i-0spare00000000002')).toBeUndefined();
    expect(await row('lablink-2')).toMatchObject({
      state: 'waiting',
      instance_id: 'i-0spare00000000001',
      replaced_instance_id: 'i-0000000000000002',
      spare: true,
      failed_at: null,
      failure: null,
      replacement_requested_at: null,
    });
    expect(await countWarmingVms(db.sql)).toBe(0);

    // The spare polls under its new name and is handed out like any VM.
    await register('lablink-2', 'i-0spare00000000001');
    expect(await countFreeVms(db.sql)).toBe(2);
    await requestVm(db.sql, { email: 'first@example.com', crdCommand: crdCommand() });
    expect(await requestVm(db.sql, { email: 'second@example.com', crdCommand: crdCommand() })).toMatchObject({
      kind: 'assigned',
      hostname: 'lablink-2',
    });
    // The spare still counts: the group keeps one instance.
    await doctor.tick();
    expect(desired().at(-1)).toBe(1);
    expect(await countSparesWanted(db.sql)).toBe(1);
  });

  it('terminates a failed spare without lowering the group, so the group starts its successor', async () => {
    await goSilent('lablink-2');
    await doctor.tick();
    await claimSpareName(db.sql, 'i-0spare00000000001');
    await register('lablink-2', 'i-0spare00000000001');

    await goSilent('lablink-2');
    await doctor.tick();
    expect(autoScalingMock.commandCalls(TerminateInstanceInAutoScalingGroupCommand).map((call) => call.args[0].input)).toEqual([
      { InstanceId: 'i-0spare00000000001', ShouldDecrementDesiredCapacity: false },
    ]);
    expect(await row('lablink-2')).toMatchObject({ replacement_count: 2, spare: true });
    expect(await countSparesWanted(db.sql)).toBe(1);
    expect(await claimSpareName(db.sql, 'i-0spare00000000003')).toBe('lablink-2');
    // The name's first instance, CloudFormation's, is the one remembered: it stays, stopped.
    expect(await row('lablink-2')).toMatchObject({ instance_id: 'i-0spare00000000003', replaced_instance_id: 'i-0000000000000002' });

    // Twice replaced is the limit: a third failure leaves the name failed for the admin.
    await register('lablink-2', 'i-0spare00000000003');
    await goSilent('lablink-2');
    await doctor.tick();
    expect(await row('lablink-2')).toMatchObject({
      replacement_count: 2,
      replacement_requested_at: null,
      failure: 'The agent stopped reporting',
    });
  });

  it('waits for the successor when the group replaced a spare by itself, and retires a name whose instance CloudFormation deleted', async () => {
    await goSilent('lablink-2');
    await doctor.tick();
    await claimSpareName(db.sql, 'i-0spare00000000001');
    await register('lablink-2', 'i-0spare00000000001');

    goneInstances.add('i-0spare00000000001');
    goneInstances.add('i-0000000000000001');
    // With a reboot left, the doctor asks EC2 first and finds both instances gone.
    const rebooting = new FleetDoctor({
      sql: db.sql,
      policy: { ...POLICY, maxReboots: 1 },
      rebooter: new Ec2Rebooter(ec2),
      spares: { group: new AwsSparesGroup(ec2, autoScaling, GROUP), maxReplacements: 2 },
      log: silentLogger,
      intervalMs: 60_000,
    });
    await db.pool.query(`UPDATE vms SET health_reported_at = now() - interval '10 minutes', alive_until = now()`);
    await rebooting.tick();
    await db.pool.query(`UPDATE vms SET unhealthy_since = now() - interval '10 minutes'`);
    await rebooting.tick();
    expect(ec2Mock.commandCalls(RebootInstancesCommand)).toHaveLength(0);
    // Nothing to terminate: the group has started the successor already, and the name waits for it.
    expect(autoScalingMock.commandCalls(TerminateInstanceInAutoScalingGroupCommand)).toHaveLength(0);
    expect(await row('lablink-2')).toMatchObject({ failure: 'Its spare instance is gone' });
    expect((await row('lablink-2')).replacement_requested_at).not.toBeNull();
    expect(await claimSpareName(db.sql, 'i-0spare00000000002')).toBe('lablink-2');
    expect(await row('lablink-1')).toMatchObject({ state: 'retired', replacement_requested_at: null });
    expect(desired().at(-1)).toBe(1);

    // Without a reboot left, the same happens through the replacement itself: nothing to terminate, the name waits.
    goneInstances.add('i-0spare00000000002');
    await register('lablink-2', 'i-0spare00000000002');
    await goSilent('lablink-2');
    await doctor.tick();
    expect(autoScalingMock.commandCalls(TerminateInstanceInAutoScalingGroupCommand)).toHaveLength(0);
    expect(await claimSpareName(db.sql, 'i-0spare00000000003')).toBe('lablink-2');
  });

  it('ends the spares of names a smaller fleet no longer has once nobody is on them; a grown-back name is a named VM again', async () => {
    await register('lablink-3', 'i-0000000000000003');
    for (const name of ['lablink-2', 'lablink-3']) {
      await goSilent(name);
      await doctor.tick();
    }
    await claimSpareName(db.sql, 'i-0spare00000000002');
    await claimSpareName(db.sql, 'i-0spare00000000003');
    await register('lablink-2', 'i-0spare00000000002');
    await register('lablink-3', 'i-0spare00000000003');
    await db.pool.query(`UPDATE vms SET email = 'busy@example.com', state = 'configured' WHERE hostname = 'lablink-3'`);

    // A deployment with the smaller vmCount: the old task stops, the new one knows the new size.
    await doctor.stop();
    const shrunk = new FleetDoctor({
      sql: db.sql,
      policy: POLICY,
      rebooter: new Ec2Rebooter(ec2),
      spares: { group: new AwsSparesGroup(ec2, autoScaling, GROUP), maxReplacements: 2, names: { prefix: 'lablink', vmCount: 1 } },
      log: silentLogger,
      intervalMs: 60_000,
    });
    // Auto Scaling refuses the first time: the name is out of the pool at once, and its spare is ended on the next round.
    autoScalingMock
      .on(TerminateInstanceInAutoScalingGroupCommand)
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    await shrunk.tick();
    expect(await row('lablink-2')).toMatchObject({ state: 'retired', spare: true });
    // The spare, still shutting down, polls once more: a retired name stays retired for the instance it was retired with.
    await register('lablink-2', 'i-0spare00000000002');
    expect(await row('lablink-2')).toMatchObject({ state: 'retired' });
    expect(await countFreeVms(db.sql)).toBe(1);
    await shrunk.tick();
    expect(autoScalingMock.commandCalls(TerminateInstanceInAutoScalingGroupCommand).map((call) => call.args[0].input)).toEqual([
      { InstanceId: 'i-0spare00000000002', ShouldDecrementDesiredCapacity: true },
      { InstanceId: 'i-0spare00000000002', ShouldDecrementDesiredCapacity: true },
    ]);
    expect(await row('lablink-2')).toMatchObject({ state: 'retired', spare: false });
    // Someone works on lablink-3: it stays until they are done.
    expect(await row('lablink-3')).toMatchObject({ state: 'configured', spare: true });
    expect(await row('lablink-1')).toMatchObject({ state: 'waiting', spare: false });
    expect(desired().at(-1)).toBe(1);

    // The fleet grows back: CloudFormation's new lablink-2 registers as a named VM, and no spare is wanted for it.
    await register('lablink-2', 'i-0000000000000022');
    expect(await row('lablink-2')).toMatchObject({ state: 'waiting', spare: false, instance_id: 'i-0000000000000022' });
    expect(await countSparesWanted(db.sql)).toBe(1);
  });

  it('gives one spare one name even when its boot script asks twice at the same moment', async () => {
    for (const name of ['lablink-1', 'lablink-2'])
      await db.pool.query(`UPDATE vms SET failed_at = now(), replacement_requested_at = now() WHERE hostname = $1`, [name]);
    const first = await db.pool.connect();
    try {
      await first.query('BEGIN');
      const { text, values } = toPositional(CLAIM_SPARE_NAME, { instanceId: 'i-0spare00000000001' });
      const [claimed] = (await first.query(text, values)).rows;
      // The second claim cannot see the first until it commits, and must not take the other name.
      const second = claimSpareName(db.sql, 'i-0spare00000000001');
      await new Promise((resolve) => setTimeout(resolve, 300));
      await first.query('COMMIT');
      expect(await second).toBe(claimed.hostname);
    } finally {
      first.release();
    }
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM vms WHERE replacement_requested_at IS NOT NULL`)).rows[0].n).toBe(1);
  });

  it('gives two different spares claiming at the same moment two different names, and one of them none when only one name waits', async () => {
    const claimWhileAnotherClaims = async (firstInstance: string, secondInstance: string) => {
      const first = await db.pool.connect();
      try {
        await first.query('BEGIN');
        const { text, values } = toPositional(CLAIM_SPARE_NAME, { instanceId: firstInstance });
        const [claimed] = (await first.query(text, values)).rows;
        const second = claimSpareName(db.sql, secondInstance);
        await new Promise((resolve) => setTimeout(resolve, 300));
        await first.query('COMMIT');
        return [claimed?.hostname, await second];
      } finally {
        first.release();
      }
    };
    const holders = async () => (await db.pool.query(`SELECT hostname, instance_id FROM vms WHERE spare ORDER BY hostname`)).rows;
    for (const name of ['lablink-1', 'lablink-2'])
      await db.pool.query(`UPDATE vms SET failed_at = now(), replacement_requested_at = now() WHERE hostname = $1`, [name]);
    const [firstName, secondName] = await claimWhileAnotherClaims('i-0spare00000000001', 'i-0spare00000000002');
    expect([firstName, secondName].sort()).toEqual(['lablink-1', 'lablink-2']);
    expect(await holders()).toEqual(
      [
        { hostname: firstName, instance_id: 'i-0spare00000000001' },
        { hostname: secondName, instance_id: 'i-0spare00000000002' },
      ].sort((a, b) => a.hostname.localeCompare(b.hostname)),
    );

    await db.pool.query(`UPDATE vms SET failed_at = now(), replacement_requested_at = now(), spare = false WHERE hostname = 'lablink-1'`);
    expect(await claimWhileAnotherClaims('i-0spare00000000003', 'i-0spare00000000004')).toEqual(['lablink-1', undefined]);
    expect(await holders()).toContainEqual({ hostname: 'lablink-1', instance_id: 'i-0spare00000000003' });
  });

  it('keeps a VM waiting for its spare out of resets, and stops promising it to participants after 20 minutes', async () => {
    await goSilent('lablink-2');
    await doctor.tick();
    expect(await resetVms(db.sql, { scope: 'released' })).toEqual([]);
    expect(await countWarmingVms(db.sql)).toBe(1);
    await db.pool.query(`UPDATE vms SET replacement_requested_at = now() - interval '21 minutes' WHERE hostname = 'lablink-2'`);
    expect(await countWarmingVms(db.sql)).toBe(0);
  });

  it('leaves a VM with a participant, and one whose workshop setup failed, to the admin', async () => {
    await requestVm(db.sql, { email: 'busy@example.com', crdCommand: crdCommand() });
    await db.pool.query(`UPDATE vms SET failed_at = now(), failure = 'broken' WHERE hostname = 'lablink-1'`);
    await db.pool.query(`UPDATE vms SET failed_at = now(), failure = $1 WHERE hostname = 'lablink-2'`, [
      `${SETUP_FAILURE_PREFIX}: the check exited 1`,
    ]);
    await doctor.tick();
    expect(ec2Mock.commandCalls(StopInstancesCommand)).toHaveLength(0);
    expect(await countSparesWanted(db.sql)).toBe(0);
  });

  it('keeps the VM failed, to be tried again, when EC2 refuses to take its instance out', async () => {
    ec2Mock
      .on(CreateTagsCommand)
      .rejects(Object.assign(new Error('You are not authorized to perform this operation.'), { name: 'UnauthorizedOperation' }));
    await goSilent('lablink-2');
    await doctor.tick();
    expect(await row('lablink-2')).toMatchObject({
      replacement_requested_at: null,
      replacement_count: 0,
      failure: 'The agent stopped reporting',
    });
    expect(ec2Mock.commandCalls(StopInstancesCommand)).toHaveLength(0);

    ec2Mock.on(CreateTagsCommand).resolves({});
    await doctor.tick();
    expect(await row('lablink-2')).toMatchObject({ replacement_count: 1 });
    expect(desired().at(-1)).toBe(1);
  });

  it('asks for no spare while the warm pool has a stopped VM to start instead, and does once none is left', async () => {
    await register('lablink-3', 'i-0000000000000003');
    await db.pool.query(`UPDATE vms SET stopped_at = now(), alive_until = now() WHERE hostname = 'lablink-3'`);
    await goSilent('lablink-2');
    await doctor.tick();
    expect(await row('lablink-2')).toMatchObject({ replacement_requested_at: null, failure: 'The agent stopped reporting' });
    expect(ec2Mock.commandCalls(StopInstancesCommand)).toHaveLength(0);

    await db.pool.query(`UPDATE vms SET stopped_at = NULL WHERE hostname = 'lablink-3'`);
    await doctor.tick();
    expect(await row('lablink-2')).toMatchObject({ replacement_count: 1 });
    expect(desired().at(-1)).toBe(1);
  });

  it('never lets the warm pool stop a spare (its group would replace a stopped instance as unhealthy)', async () => {
    await goSilent('lablink-2');
    await doctor.tick();
    await claimSpareName(db.sql, 'i-0spare00000000001');
    await register('lablink-2', 'i-0spare00000000001');
    expect((await warmPoolVms(db.sql)).map((vm) => vm.hostname)).toEqual(['lablink-1']);
  });
});
