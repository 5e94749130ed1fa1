import { Sql } from './sql';
import { resetVms } from './vms';

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

/** The in-use probe saw someone on this VM during its current assignment: it is not idle. */
export const MARK_CONNECTED = `
UPDATE vms SET connected_assignment_id = assignment_id
WHERE hostname = :hostname AND assignment_id IS NOT NULL AND connected_assignment_id IS DISTINCT FROM assignment_id`;

/** Every VM that will be released unless its participant acts, and the seconds left; one assignment's when :assignmentId is set. */
export const SELECT_IDLE_DEADLINES = `
SELECT hostname, assignment_id::text AS assignment_id, reason, ceil(extract(epoch FROM due - now()))::int AS seconds_left
FROM (
  SELECT hostname, assignment_id, 'failed' AS reason,
    coalesce(delivered_at, assigned_at) + make_interval(secs => CAST(:failedAfterSeconds AS float8)) AS due
  FROM vms
  WHERE CAST(:failedAfterSeconds AS float8) IS NOT NULL AND state = 'error' AND email IS NOT NULL AND failed_at IS NULL
  UNION ALL
  SELECT hostname, assignment_id, 'unconnected',
    configured_at + make_interval(secs => CAST(:unconnectedAfterSeconds AS float8))
  FROM vms
  WHERE CAST(:unconnectedAfterSeconds AS float8) IS NOT NULL AND state = 'configured' AND email IS NOT NULL AND failed_at IS NULL
    AND in_use IS NOT NULL AND connected_assignment_id IS DISTINCT FROM assignment_id
) AS deadlines
WHERE CAST(:assignmentId AS uuid) IS NULL OR assignment_id = CAST(:assignmentId AS uuid)
ORDER BY due, hostname`;

export interface IdleDeadline {
  hostname: string;
  assignmentId: string;
  reason: IdleReason;
  /** Zero or less: due now. */
  secondsLeft: number;
}

export async function idleDeadlines(sql: Sql, policy: IdleReleasePolicy, assignmentId: string | null = null): Promise<IdleDeadline[]> {
  const rows = await sql.query<{ hostname: string; assignment_id: string; reason: IdleReason; seconds_left: number }>(SELECT_IDLE_DEADLINES, {
    failedAfterSeconds: policy.failedAfterSeconds,
    unconnectedAfterSeconds: policy.unconnectedAfterSeconds,
    assignmentId,
  });
  return rows.map((row) => ({ hostname: row.hostname, assignmentId: row.assignment_id, reason: row.reason, secondsLeft: row.seconds_left }));
}

export async function markConnected(sql: Sql, hostname: string): Promise<void> {
  await sql.query(MARK_CONNECTED, { hostname });
}

/**
 * Releases and resets the VMs whose time ran out. The reset takes a VM only while it still has the
 * assignment found due and nobody connected: a participant's retry that commits first (a new
 * assignment id) keeps the VM; a sweep that commits first makes the retry find no VM of its own.
 */
export async function releaseIdleVms(sql: Sql, policy: IdleReleasePolicy): Promise<(IdleDeadline & { resetting: boolean })[]> {
  const due = (await idleDeadlines(sql, policy)).filter((deadline) => deadline.secondsLeft <= 0);
  if (due.length === 0) return [];
  const released = new Map((await resetVms(sql, { scope: 'idle', assignmentIds: due.map((deadline) => deadline.assignmentId) })).map((row) => [row.hostname, row]));
  return due.filter((deadline) => released.has(deadline.hostname)).map((deadline) => ({ ...deadline, resetting: released.get(deadline.hostname)!.resetting }));
}

function minutesFromEnv(env: NodeJS.ProcessEnv, name: string, fallbackSeconds: number | null): number | null {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallbackSeconds;
  if (!/^\d+$/.test(raw) || Number(raw) > 1440) throw new Error(`${name} must be a whole number of minutes from 0 (off) to 1440, not "${raw}".`);
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
