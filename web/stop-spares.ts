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
  const instances = described.AutoScalingGroups?.[0]?.Instances ?? [];
  // EC2 refuses the whole call if one instance is not running yet (or is ending).
  const running = instances.flatMap((instance) =>
    instance.InstanceId && instance.LifecycleState === 'InService' ? [instance.InstanceId] : [],
  );
  if (running.length > 0) await ec2.send(new StopInstancesCommand({ InstanceIds: running }));
  const launching = instances.filter((instance) => instance.LifecycleState?.startsWith('Pending'));
  // Thrown after the others are stopped, so the invocation's retry stops these once they run.
  if (launching.length > 0)
    throw new Error(`Spares still launching, stopped on the next try: ${launching.map((instance) => instance.InstanceId).join(' ')}`);
  return running;
}
