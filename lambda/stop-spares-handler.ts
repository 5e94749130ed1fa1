import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { createLogger } from '../core/log';
import { stopSpares } from './stop-spares';

const log = createLogger('json');
const groupName = process.env.LABLINK_SPARES_GROUP ?? '';
if (!groupName) throw new Error('LABLINK_SPARES_GROUP must be set.');
const autoScaling = new AutoScalingClient({});
const ec2 = new EC2Client({});

/** Invoked by EventBridge Scheduler at expiresAt. */
export async function handler(): Promise<{ stopped: string[] }> {
  const stopped = await stopSpares(autoScaling, ec2, groupName);
  log.info('fleet.spares_stopped', { group: groupName, instances: stopped.join(' ') });
  return { stopped };
}
