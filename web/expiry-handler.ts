import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { createLogger } from '../core/log';
import { stopSpares } from './stop-spares';
import { liftTerminationProtection } from './termination-protection';

const log = createLogger('json');
const groupName = process.env.LABLINK_SPARES_GROUP ?? '';
const fleetName = process.env.LABLINK_FLEET_NAME ?? '';
if (!groupName || !fleetName) throw new Error('LABLINK_SPARES_GROUP and LABLINK_FLEET_NAME must be set.');
// Adaptive retries slow the calls down when EC2 answers RequestLimitExceeded.
const autoScaling = new AutoScalingClient({ retryMode: 'adaptive', maxAttempts: 10 });
const ec2 = new EC2Client({ retryMode: 'adaptive', maxAttempts: 10 });

/**
 * Invoked by EventBridge Scheduler at expiresAt. Lifts termination protection first (the
 * allocator, stopped at the same time, can no longer), so a later `cdk destroy` can delete
 * the VMs participants had; then stops the running spares.
 */
export async function handler(): Promise<{ unprotected: string[]; stopped: string[] }> {
  const unprotected = (await liftTerminationProtection(ec2, fleetName)).map((instance) => instance.instanceId);
  log.info('fleet.protection_lifted', { fleet: fleetName, instances: unprotected.join(' ') });
  const stopped = await stopSpares(autoScaling, ec2, groupName);
  log.info('fleet.spares_stopped', { group: groupName, instances: stopped.join(' ') });
  return { unprotected, stopped };
}
