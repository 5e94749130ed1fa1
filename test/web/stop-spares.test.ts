import { AutoScalingClient, DescribeAutoScalingGroupsCommand, SuspendProcessesCommand } from '@aws-sdk/client-auto-scaling';
import { EC2Client, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { stopSpares } from '../../web/stop-spares';

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

describe('stopping the spares at expiresAt (Auto Scaling and EC2 mocked with aws-sdk-client-mock)', () => {
  const autoScaling = new AutoScalingClient({ region: 'eu-west-1', credentials });
  const ec2 = new EC2Client({ region: 'eu-west-1', credentials });
  const autoScalingMock = mockClient(autoScaling);
  const ec2Mock = mockClient(ec2);
  const group = (...instances: [string, string][]) => ({
    AutoScalingGroups: [
      {
        AutoScalingGroupName: 'LabLink-Spares',
        Instances: instances.map(([InstanceId, LifecycleState]) => ({ InstanceId, LifecycleState })),
      },
    ],
  });

  beforeEach(() => {
    autoScalingMock.reset();
    ec2Mock.reset();
    autoScalingMock.on(SuspendProcessesCommand).resolves({});
    ec2Mock.on(StopInstancesCommand).resolves({});
  });

  it('keeps the group from replacing stopped spares, then stops every spare it has', async () => {
    autoScalingMock
      .on(DescribeAutoScalingGroupsCommand)
      .resolves(group(['i-0spare1', 'InService'], ['i-0spare2', 'InService'], ['i-0ending', 'Terminating']) as never);
    expect(await stopSpares(autoScaling, ec2, 'LabLink-Spares')).toEqual(['i-0spare1', 'i-0spare2']);
    expect(autoScalingMock.commandCalls(SuspendProcessesCommand)[0].args[0].input).toEqual({
      AutoScalingGroupName: 'LabLink-Spares',
      ScalingProcesses: ['HealthCheck', 'ReplaceUnhealthy', 'AZRebalance'],
    });
    expect(ec2Mock.commandCalls(StopInstancesCommand).map((call) => call.args[0].input)).toEqual([
      { InstanceIds: ['i-0spare1', 'i-0spare2'] },
    ]);
  });

  it('stops the running spares, then fails naming a spare still launching, so the retry stops it once it runs', async () => {
    autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves(group(['i-0spare1', 'InService'], ['i-0new', 'Pending']) as never);
    await expect(stopSpares(autoScaling, ec2, 'LabLink-Spares')).rejects.toThrow('Spares still launching, stopped on the next try: i-0new');
    expect(ec2Mock.commandCalls(StopInstancesCommand).map((call) => call.args[0].input)).toEqual([{ InstanceIds: ['i-0spare1'] }]);
  });

  it('stops nothing when no spare runs', async () => {
    autoScalingMock.on(DescribeAutoScalingGroupsCommand).resolves(group() as never);
    expect(await stopSpares(autoScaling, ec2, 'LabLink-Spares')).toEqual([]);
    expect(ec2Mock.commandCalls(StopInstancesCommand)).toHaveLength(0);
  });
});
