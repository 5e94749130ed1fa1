import { AutoScalingClient, DescribeAutoScalingGroupsCommand, SuspendProcessesCommand } from '@aws-sdk/client-auto-scaling';
import { EC2Client, StopInstancesCommand } from '@aws-sdk/client-ec2';

/**
 * What would replace a stopped spare as unhealthy or move it: off from the workshop's end on.
 * Launch stays on, so a later deploy that moves expiresAt can start spares again; the allocator
 * replaces failed VMs itself.
 */
export const PROCESSES_SUSPENDED_AT_EXPIRY = ['HealthCheck', 'ReplaceUnhealthy', 'AZRebalance'];

/**
 * Stops every spare at `expiresAt`, as the expiry schedules stop the named VMs: the spares have
 * no instance ids in the template, and scale-in protection keeps a lower capacity from ending
 * them. Stopped, not terminated: a participant's files stay until `cdk destroy`.
 */
export async function stopSpares(autoScaling: AutoScalingClient, ec2: EC2Client, groupName: string): Promise<string[]> {
  await autoScaling.send(new SuspendProcessesCommand({ AutoScalingGroupName: groupName, ScalingProcesses: PROCESSES_SUSPENDED_AT_EXPIRY }));
  const described = await autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName] }));
  const instanceIds = (described.AutoScalingGroups?.[0]?.Instances ?? []).flatMap((instance) => (instance.InstanceId ? [instance.InstanceId] : []));
  if (instanceIds.length > 0) await ec2.send(new StopInstancesCommand({ InstanceIds: instanceIds }));
  return instanceIds;
}
