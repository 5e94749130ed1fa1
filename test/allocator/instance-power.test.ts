import {
  DescribeInstancesCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
  RebootInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { Ec2Rebooter, FleetDoctor } from '../../allocator/fleet-doctor';
import { Ec2InstancePower, FleetPower } from '../../allocator/instance-power';
import { silentLogger } from '../../core/log';
import { requestVm } from '../../store/assignment';
import { CLAIM_STOPS, countWarmingVms } from '../../store/fleet-power';
import { moveParticipant, recordHealth } from '../../store/health';
import { recordReset, resetVms } from '../../store/reset';
import { Sql } from '../../store/sql';
import { countFreeVms, listVms, markDelivered, recordOutcome, recordPoll } from '../../store/vms';
import { DEFAULT_LINE_POLICY } from '../../store/waiting-line';
import { stateLabel } from '../../web/admin-page';
import { TestDatabase, createTestDatabase } from '../support/database';
import { crdCommand } from '../support/fixtures';
import { startTestStack, submitForm } from '../support/stack';

const MINUTE = 60_000;

describe('fleet power against real PostgreSQL (EC2 ModifyInstanceAttribute, StartInstances, StopInstances, RebootInstances mocked with aws-sdk-client-mock)', () => {
  let db: TestDatabase;
  const ec2 = new EC2Client({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const ec2Mock = mockClient(ec2);
  const power = (warmVms?: number) =>
    new FleetPower({
      sql: db.sql,
      power: new Ec2InstancePower(ec2),
      log: silentLogger,
      intervalMs: 3_600_000,
      warmVms,
      graceMs: 10 * MINUTE,
    });
  const protections = () =>
    ec2Mock
      .commandCalls(ModifyInstanceAttributeCommand)
      .map((call) => [call.args[0].input.InstanceId, call.args[0].input.DisableApiTermination?.Value]);
  const started = () => ec2Mock.commandCalls(StartInstancesCommand).flatMap((call) => call.args[0].input.InstanceIds ?? []);
  const stopped = () => ec2Mock.commandCalls(StopInstancesCommand).flatMap((call) => call.args[0].input.InstanceIds ?? []);
  const register = async (count: number) => {
    for (let n = 1; n <= count; n += 1) await recordPoll(db.sql, `vm-${n}`, 600, `i-${n}`);
  };
  const assign = async (email: string) => {
    const result = await requestVm(db.sql, { email, crdCommand: crdCommand() });
    if (result.kind !== 'assigned') throw new Error(`expected an assignment, got ${result.kind}`);
    return result.hostname;
  };

  beforeEach(async () => {
    db = await createTestDatabase();
    ec2Mock.reset();
    ec2Mock.on(ModifyInstanceAttributeCommand).resolves({});
    ec2Mock.on(StartInstancesCommand).resolves({});
    ec2Mock.on(StopInstancesCommand).resolves({});
  });
  afterEach(async () => db?.drop());

  it('protects a VM from deletion while it has a participant, through its reset, and lifts it when the VM is free again', async () => {
    await register(2);
    const fleet = power();
    const taken = await assign('ada@example.com');
    const instance = `i-${taken.split('-')[1]}`;
    await fleet.tick();
    expect(protections()).toEqual([[instance, true]]);
    await fleet.tick();
    expect(protections()).toHaveLength(1);

    await resetVms(db.sql, { scope: 'one', hostname: taken });
    await fleet.tick();
    expect(protections()).toHaveLength(1);
    await recordReset(db.sql, taken, 'done', null);
    await fleet.tick();
    expect(protections()).toEqual([
      [instance, true],
      [instance, false],
    ]);
  });

  it('protects the VMs with a participant again when an allocator starts, as the expiry function or the teardown may have lifted it', async () => {
    await register(3);
    const taken = await assign('ada@example.com');
    const instance = `i-${taken.split('-')[1]}`;
    await power().tick();
    expect(protections()).toEqual([[instance, true]]);
    // A later deploy that moves expiresAt starts the allocator again: it cannot know what was lifted in EC2 meanwhile.
    const restarted = power();
    await restarted.tick();
    await restarted.tick();
    expect(protections()).toEqual([
      [instance, true],
      [instance, true],
    ]);
  });

  it('keeps protection on in every state a participant is on a VM (a failed start-host, a move, a retry), with one call on and one off per VM', async () => {
    await register(2);
    const fleet = power();
    const visited: string[] = [];
    /** One allocator round: every protection call so far, and the states in which a participant was on a VM. */
    const round = async () => {
      await fleet.tick();
      const { rows } = await db.pool.query(
        `SELECT hostname, state FROM vms WHERE email IS NOT NULL OR state = 'resetting' ORDER BY hostname`,
      );
      visited.push(...rows.map((row: { hostname: string; state: string }) => `${row.hostname} ${row.state}`));
      return protections();
    };
    const first = await requestVm(db.sql, { email: 'ada@example.com', crdCommand: crdCommand() });
    if (first.kind !== 'assigned') throw new Error(first.kind);
    const vm = first.hostname;
    const other = vm === 'vm-1' ? 'vm-2' : 'vm-1';
    const [instance, otherInstance] = [`i-${vm.slice(3)}`, `i-${other.slice(3)}`];
    expect(await round()).toEqual([[instance, true]]);
    await markDelivered(db.sql, [{ hostname: vm, assignmentId: first.assignmentId }]);
    expect(await round()).toEqual([[instance, true]]);
    // start-host failed: the participant is still on the VM, about to paste a new command.
    await recordOutcome(db.sql, { hostname: vm, assignmentId: first.assignmentId, outcome: 'error', error: 'code used' });
    expect(await round()).toEqual([[instance, true]]);
    const retried = await requestVm(db.sql, { email: 'ada@example.com', crdCommand: crdCommand(), retryToken: first.retryToken });
    if (retried.kind !== 'assigned' || retried.outcome !== 'retried') throw new Error(`expected a retry, got ${retried.kind}`);
    expect(await round()).toEqual([[instance, true]]);
    await markDelivered(db.sql, [{ hostname: vm, assignmentId: retried.assignmentId }]);
    await recordOutcome(db.sql, { hostname: vm, assignmentId: retried.assignmentId, outcome: 'configured', error: null });
    expect(await round()).toEqual([[instance, true]]);
    // The VM broke under the participant: moved to the other VM, which waits in `error` for their new command.
    expect((await moveParticipant(db.sql, vm)).kind).toBe('moved');
    expect(await round()).toEqual([
      [instance, true],
      [otherInstance, true],
    ]);
    expect(await round()).toEqual([
      [instance, true],
      [otherInstance, true],
    ]);
    await recordReset(db.sql, vm, 'done', null);
    expect(await round()).toEqual([
      [instance, true],
      [otherInstance, true],
      [instance, false],
    ]);
    await resetVms(db.sql, { scope: 'one', hostname: other });
    expect(await round()).toHaveLength(3);
    await recordReset(db.sql, other, 'done', null);
    expect(await round()).toEqual([
      [instance, true],
      [otherInstance, true],
      [instance, false],
      [otherInstance, false],
    ]);
    expect(new Set(visited)).toEqual(
      new Set([
        `${vm} assigned`,
        `${vm} delivered`,
        `${vm} error`,
        `${vm} configured`,
        `${vm} resetting`,
        `${other} error`,
        `${other} resetting`,
      ]),
    );
  });

  it('tries a refused protection again on the next round', async () => {
    await register(1);
    ec2Mock.on(ModifyInstanceAttributeCommand).rejectsOnce(new Error('RequestLimitExceeded')).resolves({});
    const fleet = power();
    await assign('grace@example.com');
    await fleet.tick();
    await fleet.tick();
    expect(protections()).toEqual([
      ['i-1', true],
      ['i-1', true],
    ]);
    const { rows } = await db.pool.query(`SELECT termination_protected FROM vms WHERE hostname = 'vm-1'`);
    expect(rows).toEqual([{ termination_protected: true }]);
  });

  it('warm pool: stops free VMs beyond warmVms after the grace period, out of the pool before EC2 stops them', async () => {
    await register(5);
    const fleet = power(2);
    const t0 = Date.now();
    await fleet.tick(t0);
    expect(stopped()).toEqual([]);
    await fleet.tick(t0 + 11 * MINUTE);
    expect(stopped()).toHaveLength(3);
    expect(await countFreeVms(db.sql)).toBe(2);
    // A stopping VM's last poll while it shuts down does not put it back in the pool.
    for (const instance of stopped()) await recordPoll(db.sql, `vm-${instance.slice(2)}`, 600, instance);
    expect(await countFreeVms(db.sql)).toBe(2);
    await fleet.tick(t0 + 12 * MINUTE);
    expect(stopped()).toHaveLength(3);
  });

  it('warm pool: never stops a VM a participant took after the pool decided to stop it', async () => {
    await register(3);
    let taken: string | undefined;
    // The participant's form submission lands between the pool's decision and its claim of the VMs to stop.
    const racing: Sql = {
      query: async (statement, params) => {
        if (statement === CLAIM_STOPS && taken === undefined) taken = await assign('ada@example.com');
        return db.sql.query(statement, params);
      },
    };
    const fleet = new FleetPower({
      sql: racing,
      power: new Ec2InstancePower(ec2),
      log: silentLogger,
      intervalMs: 3_600_000,
      warmVms: 0,
      graceMs: 10 * MINUTE,
    });
    const t0 = Date.now();
    await fleet.tick(t0);
    await fleet.tick(t0 + 11 * MINUTE);
    expect(taken).toBeDefined();
    expect(stopped()).toHaveLength(2);
    expect(stopped()).not.toContain(`i-${taken!.slice(3)}`);
    const { rows } = await db.pool.query(`SELECT stopped_at FROM vms WHERE hostname = $1`, [taken]);
    expect(rows).toEqual([{ stopped_at: null }]);
  });

  it('warm pool: a stopped VM is silent on purpose: never stale, unhealthy or rebooted, and listed as stopped', async () => {
    await register(3);
    for (let n = 1; n <= 3; n += 1)
      await recordHealth(db.sql, `vm-${n}`, { heartbeat: { bootId: 'b', uptimeSeconds: 1, crdRunning: false, diskFreeMb: 1000 } });
    const fleet = power(1);
    const t0 = Date.now();
    await fleet.tick(t0);
    await fleet.tick(t0 + 11 * MINUTE);
    expect(stopped()).toHaveLength(2);
    // Long after the last heartbeat of every VM, as if they had all gone silent.
    await db.pool.query(
      `UPDATE vms SET health_reported_at = now() - interval '1 hour', alive_until = CASE WHEN stopped_at IS NULL THEN alive_until ELSE now() END`,
    );
    const policy = { staleSeconds: 60, repairAfterSeconds: 0, maxReboots: 2, cooldownSeconds: 0 };
    const doctor = new FleetDoctor({ sql: db.sql, policy, rebooter: new Ec2Rebooter(ec2), log: silentLogger, intervalMs: 3_600_000 });
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [{ InstanceId: 'i-1', State: { Name: 'running' } }] }] });
    ec2Mock.on(RebootInstancesCommand).resolves({});
    await doctor.tick();
    await doctor.tick();
    const rebooted = ec2Mock.commandCalls(RebootInstancesCommand).flatMap((call) => call.args[0].input.InstanceIds ?? []);
    const running = (await listVms(db.sql, 60)).find((vm) => !vm.warm_pool)!;
    expect([...new Set(rebooted)]).toEqual([running.instance_id]);
    const listed = (await listVms(db.sql, 60))
      .filter((vm) => vm.warm_pool)
      .map((vm) => ({ label: stateLabel(vm), stale: vm.stale, unhealthy: vm.unhealthy_since, failed: vm.failed_at }));
    expect(listed).toEqual([
      { label: 'stopped', stale: false, unhealthy: null, failed: null },
      { label: 'stopped', stale: false, unhealthy: null, failed: null },
    ]);
  });

  /** Three VMs, warmVms 1: after the grace period two are stopped. */
  const twoStopped = async () => {
    await register(3);
    const fleet = power(1);
    const t0 = Date.now();
    await fleet.tick(t0);
    await fleet.tick(t0 + 11 * MINUTE);
    expect(stopped()).toHaveLength(2);
    return { fleet, t0 };
  };

  it('warm pool: each assignment starts a stopped VM, and the form is told VMs are starting while none is free', async () => {
    const { fleet, t0 } = await twoStopped();
    expect(await countWarmingVms(db.sql)).toBe(2);

    await assign('ada@example.com');
    expect(await countFreeVms(db.sql)).toBe(0);
    await fleet.tick(t0 + 12 * MINUTE);
    expect(started()).toHaveLength(1);
    expect(stopped()).toContain(started()[0]);
    expect((await requestVm(db.sql, { email: 'grace@example.com', crdCommand: crdCommand() })).kind).toBe('no_vm_free');
    expect(await countWarmingVms(db.sql)).toBe(2);

    // The started VM's agent polls again: it is free, and no longer counted as starting.
    await recordPoll(db.sql, `vm-${started()[0].slice(2)}`, 600, started()[0]);
    expect(await countFreeVms(db.sql)).toBe(1);
    expect(await countWarmingVms(db.sql)).toBe(1);
    await fleet.tick(t0 + 13 * MINUTE);
    expect(started()).toHaveLength(1);
  });

  it('warm pool: the waiting line asks for more: one stopped VM started for each participant in line, on top of warmVms', async () => {
    const { fleet, t0 } = await twoStopped();
    await assign('ada@example.com');
    for (const email of ['grace@example.com', 'alan@example.com']) {
      expect((await requestVm(db.sql, { email, crdCommand: crdCommand() }, { line: DEFAULT_LINE_POLICY })).kind).toBe('in_line');
    }
    await fleet.tick(t0 + 12 * MINUTE);
    expect(started().sort()).toEqual(stopped().sort());
  });

  it('keeps a replaced VM stopped when a deploy starts it again (DescribeInstances by filter, mocked)', async () => {
    await register(2);
    await db.pool.query(`UPDATE vms SET spare = true, replaced_instance_id = 'i-old-2', instance_id = 'i-spare-2' WHERE hostname = 'vm-2'`);
    let state = 'stopped';
    ec2Mock.on(DescribeInstancesCommand).callsFake(async (input: { Filters: { Name: string; Values: string[] }[] }) => {
      const ids = input.Filters.find((filter) => filter.Name === 'instance-id')?.Values ?? [];
      return {
        Reservations: state === 'running' ? [{ Instances: ids.filter((id) => id === 'i-old-2').map((id) => ({ InstanceId: id })) }] : [],
      };
    });
    const fleet = power();
    await fleet.tick();
    expect(stopped()).toEqual([]);
    state = 'running';
    await fleet.tick();
    expect(stopped()).toEqual(['i-old-2']);
    expect(ec2Mock.commandCalls(DescribeInstancesCommand).at(-1)?.args[0].input.Filters?.[0]).toEqual({
      Name: 'instance-id',
      Values: ['i-old-2'],
    });
  });

  it('asks EC2 about at most 200 replaced instances per call, the most one filter takes (EC2 mocked)', async () => {
    const ids = Array.from({ length: 250 }, (_, n) => `i-${n}`);
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    expect(await new Ec2InstancePower(ec2).running(ids)).toEqual([]);
    expect(ec2Mock.commandCalls(DescribeInstancesCommand).map((call) => call.args[0].input.Filters?.[0].Values?.length)).toEqual([200, 50]);
  });

  it('warm pool: with two allocator tasks (a deployment) one starts VMs for an assignment, not both; a stopping task hands over at once', async () => {
    await register(4);
    const [oldTask, newTask] = [power(1), power(1)];
    const t0 = Date.now();
    await oldTask.tick(t0);
    await newTask.tick(t0);
    await oldTask.tick(t0 + 11 * MINUTE);
    await newTask.tick(t0 + 11 * MINUTE);
    expect(stopped()).toHaveLength(3);

    await assign('ada@example.com');
    await oldTask.tick(t0 + 12 * MINUTE);
    await newTask.tick(t0 + 12 * MINUTE);
    expect(started()).toHaveLength(1);

    await oldTask.stop();
    await assign('grace@example.com').catch(() => undefined);
    await recordPoll(db.sql, `vm-${started()[0].slice(2)}`, 600, started()[0]);
    await assign('grace@example.com');
    await newTask.tick(t0 + 13 * MINUTE);
    expect(started()).toHaveLength(2);
  });
});

describe('the form while the warm pool starts VMs (real local stack)', () => {
  it('answers "more are starting, submit again in 2 minutes" instead of "none free" when stopped VMs remain', async () => {
    const env = await startTestStack();
    try {
      await recordPoll(env.db.sql, 'warm-vm-1', 600, 'i-1');
      await env.db.pool.query(`UPDATE vms SET stopped_at = now(), alive_until = now() WHERE hostname = 'warm-vm-1'`);
      const starting = await submitForm(env.url, { email: 'ada@example.com', crd_command: crdCommand() });
      expect(starting.status).toBe(503);
      expect(starting.headers.get('retry-after')).toBe('120');
      expect(((await starting.json()) as { error: string }).error).toMatch(
        /^All running VMs are taken, and more are starting now\. Submit the form again in 2 minutes/,
      );

      await env.db.pool.query(`UPDATE vms SET state = 'retired' WHERE hostname = 'warm-vm-1'`);
      const none = await submitForm(env.url, { email: 'ada@example.com', crd_command: crdCommand() });
      expect(none.status).toBe(503);
      expect(((await none.json()) as { error: string }).error).toMatch(/^No VM is free right now/);
    } finally {
      await env.close();
    }
  });
});
