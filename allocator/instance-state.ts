import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';

const GONE_STATES = new Set(['shutting-down', 'terminated']);

/**
 * Whether an instance no longer exists (the fleet shrank, or an Auto Scaling group replaced
 * it). Asked first because EC2 silently ignores reboots of terminated instances.
 */
export async function instanceGone(ec2: EC2Client, instanceId: string): Promise<boolean> {
  const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })).catch((error: Error) => {
    if (error.name === 'InvalidInstanceID.NotFound') return undefined;
    throw error;
  });
  const state = described?.Reservations?.flatMap((reservation) => reservation.Instances ?? [])[0]?.State?.Name;
  return !state || GONE_STATES.has(state);
}
