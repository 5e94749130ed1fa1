import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  SuspendProcessesCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  EC2Client,
  Instance,
  ModifyInstanceAttributeCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { FLEET_TAG } from '../../contract/wire';
import { describePlan, planTeardown, tearDown } from '../../lib/teardown';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const ec2 = new EC2Client({ region: 'eu-west-1', credentials });
const autoScaling = new AutoScalingClient({ region: 'eu-west-1', credentials });
const ec2Mock = mockClient(ec2);
const autoScalingMock = mockClient(autoScaling);

const vm = (id: string, name?: string): Instance => ({
  InstanceId: id,
  Tags: [{ Key: FLEET_TAG, Value: 'Course' }, ...(name ? [{ Key: 'Name', Value: name }] : [])],
});

/**
 * After expiresAt: four VMs stopped, two of them had participants (protected), one spare
 * named after a replaced VM and one still nameless, both stopped; two pages of instances.
 */
function workshopAfterExpiry(
  spareStates: [string, string][] = [
    ['i-spare1', 'InService'],
    ['i-spare2', 'InService'],
  ],
): void {
  ec2Mock
    .on(DescribeInstancesCommand, { NextToken: undefined })
    .resolves({ Reservations: [{ Instances: [vm('i-vm1', 'lablink-vm-1'), vm('i-vm2', 'lablink-vm-2')] }], NextToken: 'page-2' });
  ec2Mock
    .on(DescribeInstancesCommand, { NextToken: 'page-2' })
    .resolves({ Reservations: [{ Instances: [vm('i-vm3', 'lablink-vm-3'), vm('i-spare1', 'lablink-vm-4'), vm('i-spare2')] }] });
  const protectedIds = new Set(['i-vm1', 'i-spare1']);
  ec2Mock
    .on(DescribeInstanceAttributeCommand)
    .callsFake((input: { InstanceId: string }) => ({ DisableApiTermination: { Value: protectedIds.has(input.InstanceId) } }));
  ec2Mock.on(ModifyInstanceAttributeCommand).callsFake((input: { InstanceId: string }) => {
    protectedIds.delete(input.InstanceId);
    return {};
  });
  autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves({
    AutoScalingGroups: [
      {
        AutoScalingGroupName: 'Course-FleetSpares-ABC',
        Instances: [...spareStates, ['i-gone', 'Terminating']].map(([InstanceId, LifecycleState]) => ({ InstanceId, LifecycleState })),
      },
    ] as never,
  });
  autoScalingMock.on(SuspendProcessesCommand).resolves({});
  autoScalingMock.on(TerminateInstanceInAutoScalingGroupCommand).resolves({});
}

beforeEach(() => {
  ec2Mock.reset();
  autoScalingMock.reset();
});

describe('npm run teardown (EC2 and Auto Scaling mocked with aws-sdk-client-mock)', () => {
  it('finds the fleet’s stopped VMs by tag, says which are protected and which spares remain, and changes nothing', async () => {
    workshopAfterExpiry();
    const plan = await planTeardown(ec2, autoScaling, 'Course');
    // Stopped VMs too: after expiresAt every VM is stopped, and a stopped VM's protection still blocks its deletion.
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)[0].args[0].input.Filters).toEqual([
      { Name: 'tag:lablink:fleet', Values: ['Course'] },
      { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
    ]);
    expect(autoScalingMock.commandCalls(DescribeAutoScalingGroupsCommand)[0].args[0].input.Filters).toEqual([
      { Name: 'tag:lablink:fleet', Values: ['Course'] },
      { Name: 'tag:lablink:spare', Values: ['true'] },
    ]);
    expect(describePlan(plan)).toBe(
      [
        'Fleet Course: 5 instances, running or stopped.',
        'Termination protection, which would make cdk destroy fail, is on for 2: lablink-vm-1 (i-vm1), lablink-vm-4 (i-spare1).',
        '2 spares in Course-FleetSpares-ABC, which would hold up cdk destroy: i-spare1, i-spare2.',
      ].join('\n'),
    );
    expect(ec2Mock.commandCalls(ModifyInstanceAttributeCommand)).toHaveLength(0);
    expect(autoScalingMock.commandCalls(SuspendProcessesCommand)).toHaveLength(0);
    expect(autoScalingMock.commandCalls(TerminateInstanceInAutoScalingGroupCommand)).toHaveLength(0);
  });

  it('lifts the protection, keeps the group from launching, ends every spare, and only then runs cdk destroy', async () => {
    workshopAfterExpiry();
    const plan = await planTeardown(ec2, autoScaling, 'Course');
    const said: string[] = [];
    const destroy = jest.fn(async () => {
      // By the time cdk destroy runs, nothing protected is left and no spare remains.
      expect((await planTeardown(ec2, autoScaling, 'Course')).protectedInstances).toEqual([]);
      expect(autoScalingMock.commandCalls(TerminateInstanceInAutoScalingGroupCommand)).toHaveLength(2);
      return 0;
    });
    expect(await tearDown(ec2, autoScaling, plan, destroy, (line) => said.push(line))).toBe(0);
    expect(destroy).toHaveBeenCalledTimes(1);
    // Termination protection off, on the protected instances only, and nothing else set.
    expect(ec2Mock.commandCalls(ModifyInstanceAttributeCommand).map((call) => call.args[0].input)).toEqual([
      { InstanceId: 'i-vm1', DisableApiTermination: { Value: false } },
      { InstanceId: 'i-spare1', DisableApiTermination: { Value: false } },
    ]);
    expect(autoScalingMock.commandCalls(SuspendProcessesCommand)[0].args[0].input).toEqual({
      AutoScalingGroupName: 'Course-FleetSpares-ABC',
      ScalingProcesses: ['Launch'],
    });
    // Through Auto Scaling, which ends a spare despite its scale-in protection; the one already ending is left alone.
    expect(autoScalingMock.commandCalls(TerminateInstanceInAutoScalingGroupCommand).map((call) => call.args[0].input)).toEqual([
      { InstanceId: 'i-spare1', ShouldDecrementDesiredCapacity: true },
      { InstanceId: 'i-spare2', ShouldDecrementDesiredCapacity: true },
    ]);
    expect(said).toEqual(['Termination protection lifted from 2 instances.', 'Spares ended: 2.']);
  });

  it('returns cdk destroy’s failure as its own', async () => {
    workshopAfterExpiry([]);
    const plan = await planTeardown(ec2, autoScaling, 'Course');
    expect(
      await tearDown(
        ec2,
        autoScaling,
        plan,
        async () => 1,
        () => undefined,
      ),
    ).toBe(1);
  });

  it('does not run cdk destroy when a spare cannot be ended, and names it', async () => {
    workshopAfterExpiry();
    autoScalingMock.on(TerminateInstanceInAutoScalingGroupCommand, { InstanceId: 'i-spare2' }).rejects(new Error('Rate exceeded'));
    const plan = await planTeardown(ec2, autoScaling, 'Course');
    const destroy = jest.fn(async () => 0);
    await expect(tearDown(ec2, autoScaling, plan, destroy, () => undefined)).rejects.toThrow(
      'Could not end the spare i-spare2: Rate exceeded. Nothing was destroyed; run the teardown again.',
    );
    expect(destroy).not.toHaveBeenCalled();
  });

  it('with no fleet left (destroyed already, or never deployed) changes nothing and still runs cdk destroy', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
    const plan = await planTeardown(ec2, autoScaling, 'Course');
    expect(describePlan(plan)).toBe(
      'Fleet Course: 0 instances, running or stopped.\nNo instance has termination protection.\nNo spare left in the spares group.',
    );
    const destroy = jest.fn(async () => 0);
    expect(await tearDown(ec2, autoScaling, plan, destroy, () => undefined)).toBe(0);
    expect(destroy).toHaveBeenCalledTimes(1);
    expect(ec2Mock.commandCalls(ModifyInstanceAttributeCommand)).toHaveLength(0);
    expect(autoScalingMock.commandCalls(SuspendProcessesCommand)).toHaveLength(0);
  });
});

describe('the npm run teardown command (a real child process, no AWS account)', () => {
  const ROOT = path.join(__dirname, '../..');
  const run = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'bin/teardown.ts', ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        ...process.env,
        AWS_REGION: '',
        AWS_DEFAULT_REGION: '',
        AWS_PROFILE: '',
        AWS_CONFIG_FILE: '/nonexistent',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    });

  it('refuses bad deploy flags the way the deploy does, before it asks AWS anything', () => {
    const result = run('-c', 'vmCount=many', '--yes');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('vmCount must be a whole number from 0 to 1000 (got "many").');
  });

  it('accepts an expiresAt that has passed (a teardown comes after the workshop) and stops at the missing region', () => {
    const result = run('-c', 'expiresAt=2020-01-01T00:00Z', '--yes');
    expect(result.stderr).not.toContain('expiresAt');
    expect(result.stderr).toContain('No AWS region: pass --region or set AWS_REGION.');
    expect(result.status).toBe(2);
  });
});
