import { SETUP_FAILURE_PREFIX, VmResetReport } from '../contract/wire';
import { Sql } from './sql';
import { keepReleasedLinks } from './vm-status';

export type ResetScope =
  | { scope: 'one'; hostname: string }
  | { scope: 'released' }
  | { scope: 'all' }
  | { scope: 'idle'; assignmentIds: string[] }
  | { scope: 'done'; assignmentId: string; retryToken: string };

/**
 * Why a VM with LabLink's own client is not handed to the next participant after a release: it
 * keeps the participant's files and CRD host; a new boot (RECORD_HEALTH) brings it back.
 */
export const CANNOT_RESET =
  'Cannot reset itself (it runs the LabLink client, which has no reset), so the files and Chrome Remote Desktop host of its last participant stay on it: it rejoins the pool when its heartbeat reports a new boot, so boot it afresh (a new instance, or a reboot that starts a fresh client)';

/**
 * Takes VMs back for a fresh start: each leaves its participant (whose link keeps saying so) and
 * any failure mark, and waits in `resetting` until its agent has wiped the desktop and says so.
 * :scope is `one` (:hostname), `released` (no participant and out of the pool: failed, or stuck
 * resetting), `all` (the end of a session), `idle` (:assignmentIds, held by nobody: core/idle-release.ts)
 * or `done` (the participant gives :assignmentIds back from the browser holding :retryToken).
 */
const RESET_VMS = `
WITH old AS (
  -- Only this project's agent resets (LabLink's own client never does), and not while its setup has failed (it is not polling).
  SELECT hostname, email, assignment_id, previous_assignment_id,
    reports_outcome AND NOT starts_with(coalesce(failure, ''), '${SETUP_FAILURE_PREFIX}') AS can_reset FROM vms
  -- A VM waiting for a spare has left the fleet: the spare starts afresh anyway.
  WHERE state <> 'retired' AND replacement_requested_at IS NULL AND CASE CAST(:scope AS text)
    WHEN 'one' THEN hostname = CAST(:hostname AS text)
    WHEN 'released' THEN email IS NULL AND (failed_at IS NOT NULL OR state = 'resetting')
    WHEN 'all' THEN true
    -- Re-checked once locked: a retry (a new assignment id) or a connection that committed first keeps the VM.
    WHEN 'idle' THEN assignment_id = ANY(CAST(:assignmentIds AS uuid[])) AND connected_assignment_id IS DISTINCT FROM assignment_id
    WHEN 'done' THEN assignment_id = ANY(CAST(:assignmentIds AS uuid[])) AND retry_token = CAST(:retryToken AS text) END
  FOR UPDATE
), kept AS (
  ${keepReleasedLinks('old')}
)
UPDATE vms SET state = CASE WHEN old.can_reset THEN 'resetting' WHEN old.email IS NOT NULL THEN 'waiting' ELSE vms.state END,
  reset_requested_at = CASE WHEN old.can_reset THEN now() END, email = NULL, crd_command = NULL, pin = NULL, assignment_id = NULL,
  retry_token = NULL, assigned_at = NULL, delivered_at = NULL, configured_at = NULL, error = NULL, moved_from = NULL,
  previous_assignment_id = NULL, start_failures = 0,
  -- A VM that cannot reset itself but had a participant keeps their files: out of the pool until the admin reboots it.
  failed_at = CASE WHEN old.can_reset THEN NULL WHEN old.email IS NOT NULL THEN now() ELSE vms.failed_at END,
  failure = CASE WHEN old.can_reset THEN NULL WHEN old.email IS NOT NULL THEN '${CANNOT_RESET}' ELSE vms.failure END,
  unhealthy_since = CASE WHEN old.can_reset THEN NULL ELSE vms.unhealthy_since END,
  reboot_count = CASE WHEN old.can_reset THEN 0 ELSE vms.reboot_count END
FROM old WHERE vms.hostname = old.hostname
RETURNING vms.hostname, old.email AS previous_email, old.can_reset, vms.failure`;

/**
 * Takes VMs back and has their agents reset them (see RESET_VMS); returns each VM taken, the
 * participant it had, and whether it resets (a VM that cannot is left out of the pool, with
 * the reason as its failure). Empty when no VM is in scope (an unknown name, say).
 */
export async function resetVms(
  sql: Sql,
  target: ResetScope,
): Promise<{ hostname: string; previousEmail: string | null; resetting: boolean; failure: string | null }[]> {
  const rows = await sql.query<{ hostname: string; previous_email: string | null; can_reset: boolean; failure: string | null }>(RESET_VMS, {
    scope: target.scope,
    hostname: target.scope === 'one' ? target.hostname : null,
    assignmentIds: target.scope === 'idle' ? target.assignmentIds : target.scope === 'done' ? [target.assignmentId] : [],
    retryToken: target.scope === 'done' ? target.retryToken : null,
  });
  return rows.map((row) => ({ hostname: row.hostname, previousEmail: row.previous_email, resetting: row.can_reset, failure: row.failure }));
}

export type ResetOutcome = VmResetReport['outcome'];

/**
 * The agent's word that its reset ended. Done: the VM waits for the next participant (a failure
 * mark from before, such as the health checks' on a VM its participant was moved off, stays). Failed: it is marked failed with the
 * reason and never handed out until the admin resets it again.
 */
const RECORD_RESET = `
UPDATE vms SET state = 'waiting', reset_requested_at = NULL, step = NULL,
  failed_at = CASE WHEN CAST(:outcome AS text) = 'failed' THEN coalesce(failed_at, now()) ELSE failed_at END,
  failure = CASE WHEN CAST(:outcome AS text) = 'failed' THEN CAST(:failure AS text) ELSE failure END
WHERE hostname = :hostname AND state = 'resetting'
RETURNING failed_at IS NOT NULL AS failed, failure`;

/**
 * The agent's report that its reset ended; undefined when the VM was not resetting. `failure` says
 * why a VM stays out of the pool: its failed reset, or a failure mark from before the reset.
 */
export async function recordReset(
  sql: Sql,
  hostname: string,
  outcome: ResetOutcome,
  message: string | null,
): Promise<{ failed: boolean; failure: string | null } | undefined> {
  const [row] = await sql.query<{ failed: boolean; failure: string | null }>(RECORD_RESET, {
    hostname,
    outcome,
    failure: outcome === 'failed' ? `Reset failed: ${message ?? 'no reason given'}` : null,
  });
  return row;
}
