import { AutoScalingClient, DescribeAutoScalingGroupsCommand, SuspendProcessesCommand } from '@aws-sdk/client-auto-scaling';
import {
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';

describe('the function run at expiresAt (EC2 and Auto Scaling mocked with aws-sdk-client-mock)', () => {
  const ec2Mock = mockClient(EC2Client);
  const autoScalingMock = mockClient(AutoScalingClient);

  beforeAll(() => {
    process.env.LABLINK_SPARES_GROUP = 'Course-FleetSpares-ABC';
    process.env.LABLINK_FLEET_NAME = 'Course';
    process.env.AWS_REGION = 'eu-west-1';
  });

  it('lifts the termination protection the allocator kept on VMs with a participant, then stops the spares', async () => {
    // The allocator protected lablink-vm-2 (a participant on it) and is stopped at the same moment: nothing else would lift it.
    ec2Mock
      .on(DescribeInstancesCommand)
      .resolves({ Reservations: [{ Instances: [{ InstanceId: 'i-vm1' }, { InstanceId: 'i-vm2' }, { InstanceId: 'i-spare1' }] }] });
    ec2Mock
      .on(DescribeInstanceAttributeCommand)
      .callsFake((input: { InstanceId: string }) => ({ DisableApiTermination: { Value: input.InstanceId === 'i-vm2' } }));
    ec2Mock.on(ModifyInstanceAttributeCommand).resolves({});
    ec2Mock.on(StopInstancesCommand).resolves({});
    autoScalingMock.on(SuspendProcessesCommand).resolves({});
    autoScalingMock
      .on(DescribeAutoScalingGroupsCommand)
      .resolves({ AutoScalingGroups: [{ Instances: [{ InstanceId: 'i-spare1', LifecycleState: 'InService' }] }] } as never);

    const { handler } = await import('../../web/expiry-handler');
    expect(await handler()).toEqual({ unprotected: ['i-vm2'], stopped: ['i-spare1'] });
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)[0].args[0].input.Filters).toContainEqual({
      Name: 'tag:lablink:fleet',
      Values: ['Course'],
    });
    expect(ec2Mock.commandCalls(ModifyInstanceAttributeCommand).map((call) => call.args[0].input)).toEqual([
      { InstanceId: 'i-vm2', DisableApiTermination: { Value: false } },
    ]);
    expect(ec2Mock.commandCalls(StopInstancesCommand).map((call) => call.args[0].input)).toEqual([{ InstanceIds: ['i-spare1'] }]);
  });
});
