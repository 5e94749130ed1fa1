/**
 * When a VM held by nobody goes back to the pool; each rule is off when null.
 * `failedAfterSeconds`: start-host failed and no new command came (counted from the failed delivery).
 * `unconnectedAfterSeconds`: ready, and the agent's in-use probe never saw the participant (counted
 * from ready). Only VMs whose agent runs the probe (it reports in_use at all) are judged by it.
 */
export interface IdleReleasePolicy {
  failedAfterSeconds: number | null;
  unconnectedAfterSeconds: number | null;
  /** The participant's page warns this long before a never-connected VM is released. */
  warnBeforeSeconds: number;
}

export const DEFAULT_IDLE_RELEASE: IdleReleasePolicy = { failedAfterSeconds: 600, unconnectedAfterSeconds: 1200, warnBeforeSeconds: 600 };

export type IdleReason = 'failed' | 'unconnected';

function minutesFromEnv(env: NodeJS.ProcessEnv, name: string, fallbackSeconds: number | null): number | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallbackSeconds;
  if (!/^\d+$/.test(raw) || Number(raw) > 1440)
    throw new Error(`${name} must be a whole number of minutes from 0 (off) to 1440, not "${raw}".`);
  return raw === '0' ? null : Number(raw) * 60;
}

/** LABLINK_RELEASE_FAILED_AFTER_MINUTES and LABLINK_RELEASE_UNCONNECTED_AFTER_MINUTES, 0 for off; the allocator and the form read the same. */
export function idleReleaseFromEnv(env: NodeJS.ProcessEnv): IdleReleasePolicy {
  return {
    failedAfterSeconds: minutesFromEnv(env, 'LABLINK_RELEASE_FAILED_AFTER_MINUTES', DEFAULT_IDLE_RELEASE.failedAfterSeconds),
    unconnectedAfterSeconds: minutesFromEnv(env, 'LABLINK_RELEASE_UNCONNECTED_AFTER_MINUTES', DEFAULT_IDLE_RELEASE.unconnectedAfterSeconds),
    warnBeforeSeconds: DEFAULT_IDLE_RELEASE.warnBeforeSeconds,
  };
}

/** The environment that carries a policy to the allocator and the form (minutes, 0 for off). */
export function idleReleaseEnv(policy: Pick<IdleReleasePolicy, 'failedAfterSeconds' | 'unconnectedAfterSeconds'>): Record<string, string> {
  return {
    LABLINK_RELEASE_FAILED_AFTER_MINUTES: String((policy.failedAfterSeconds ?? 0) / 60),
    LABLINK_RELEASE_UNCONNECTED_AFTER_MINUTES: String((policy.unconnectedAfterSeconds ?? 0) / 60),
  };
}
