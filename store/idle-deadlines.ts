import { IdleReason, IdleReleasePolicy } from '../core/idle-release';
import { resetVms } from './reset';
import { Sql } from './sql';

/** The in-use probe saw someone on this VM during its current assignment: it is not idle. */
const MARK_CONNECTED = `
UPDATE vms SET connected_assignment_id = assignment_id
WHERE hostname = :hostname AND assignment_id IS NOT NULL AND connected_assignment_id IS DISTINCT FROM assignment_id`;

/** Every VM that will be released unless its participant acts, and the seconds left; one assignment's when :assignmentId is set. */
const SELECT_IDLE_DEADLINES = `
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
  const rows = await sql.query<{ hostname: string; assignment_id: string; reason: IdleReason; seconds_left: number }>(
    SELECT_IDLE_DEADLINES,
    {
      failedAfterSeconds: policy.failedAfterSeconds,
      unconnectedAfterSeconds: policy.unconnectedAfterSeconds,
      assignmentId,
    },
  );
  return rows.map((row) => ({
    hostname: row.hostname,
    assignmentId: row.assignment_id,
    reason: row.reason,
    secondsLeft: row.seconds_left,
  }));
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
  const released = new Map(
    (await resetVms(sql, { scope: 'idle', assignmentIds: due.map((deadline) => deadline.assignmentId) })).map((row) => [row.hostname, row]),
  );
  return due
    .filter((deadline) => released.has(deadline.hostname))
    .map((deadline) => ({ ...deadline, resetting: released.get(deadline.hostname)!.resetting }));
}
