import { CLAIM_NAME_PATH, HOSTNAME_PATTERN } from '../contract/wire';
import { AllocatorClient } from './allocator-client';

const CLAIM_TIMEOUT_MS = 30_000;

/**
 * A spare asks the allocator which failed VM's name it takes over (`agent.js claim-name`,
 * run by the boot script before the agent starts); throws saying why when it gets none.
 */
export async function claimName(client: AllocatorClient): Promise<string> {
  const response = await client.post(CLAIM_NAME_PATH, {}, AbortSignal.timeout(CLAIM_TIMEOUT_MS));
  const body = (await response.json().catch(() => ({}))) as { hostname?: unknown; error?: unknown };
  if (response.status === 200 && typeof body.hostname === 'string' && HOSTNAME_PATTERN.test(body.hostname)) return body.hostname;
  throw new Error(`The allocator gave no name (${response.status}): ${typeof body.error === 'string' ? body.error : 'no reason given'}`);
}
