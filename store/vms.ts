import { Progress } from '../contract/page-polling';
import { ConfigurationOutcome } from '../contract/wire';
import { Sql, WarmUp } from './sql';
import { COMMAND_REJECTED_PATTERN, FREE_VM, ON_THE_WAY, STALE, VM_STATUS_SQL, VmStatus } from './vm-status';

export type VmState = 'waiting' | 'assigned' | 'delivered' | 'configured' | 'error' | 'retired' | 'resetting';

/** What a VM's held poll is answered with: its participant's assignment, or the order to reset itself. */
export type Delivery = { kind: 'assignment'; command: string; pin: string; assignmentId: string; email: string } | { kind: 'reset' };

/**
 * A retired name polled by another instance is a new VM (the fleet grew back); the instance it
 * was retired with (a spare being ended, say) does not bring it back.
 */
const REVIVED = `(vms.state = 'retired' AND EXCLUDED.instance_id IS DISTINCT FROM vms.instance_id)`;

/**
 * A VM was heard from: registers its name (waiting) and keeps it alive until at least
 * :aliveSeconds from now. A poll passes its hold plus a grace; a log batch passes 0, which
 * registers the VM without counting it free and never shortens a poll's window.
 */
const RECORD_POLL = `
INSERT INTO vms (hostname, alive_until, instance_id, reports_outcome)
VALUES (:hostname, now() + make_interval(secs => CAST(:aliveSeconds AS float8)), CAST(:instanceId AS text), coalesce(CAST(:reportsOutcome AS boolean), true))
ON CONFLICT (hostname) DO UPDATE SET last_seen = now(),
  -- A VM the warm pool is stopping may poll once more while it shuts down: it stays out of the pool.
  alive_until = CASE WHEN vms.stopped_at > now() - interval '5 minutes' THEN vms.alive_until ELSE greatest(vms.alive_until, EXCLUDED.alive_until) END,
  instance_id = coalesce(EXCLUDED.instance_id, vms.instance_id),
  reports_outcome = coalesce(CAST(:reportsOutcome AS boolean), vms.reports_outcome),
  -- Polling long after it was stopped, the VM runs again, whoever started it.
  stopped_at = CASE WHEN CAST(:aliveSeconds AS float8) > 0 AND vms.stopped_at <= now() - interval '5 minutes' THEN NULL ELSE vms.stopped_at END,
  started_at = CASE WHEN CAST(:aliveSeconds AS float8) > 0 THEN NULL ELSE vms.started_at END,
  state = CASE WHEN ${REVIVED} THEN 'waiting' ELSE vms.state END,
  failed_at = CASE WHEN ${REVIVED} THEN NULL ELSE vms.failed_at END,
  failure = CASE WHEN ${REVIVED} THEN NULL ELSE vms.failure END,
  reboot_count = CASE WHEN ${REVIVED} THEN 0 ELSE vms.reboot_count END,
  spare = CASE WHEN ${REVIVED} THEN false ELSE vms.spare END
RETURNING state, (xmax = 0) AS inserted`;

/** Records that a VM is polling and may be handed out until `aliveSeconds` from now (0: registered, not yet free). */
export async function recordPoll(
  sql: Sql,
  hostname: string,
  aliveSeconds: number,
  instanceId: string | null = null,
  /** Whether the VM's agent says it reports start-host's outcome; null keeps what is known. */
  reportsOutcome: boolean | null = null,
): Promise<{ state: VmState; registered: boolean }> {
  const [row] = await sql.query<{ state: VmState; inserted: boolean }>(RECORD_POLL, { hostname, aliveSeconds, instanceId, reportsOutcome });
  return { state: row.state, registered: row.inserted };
}

/**
 * What a VM's poll is answered with at once: its assignment, or the order to reset itself. A
 * configured VM that never reports (LabLink's own client) polls again only after its client
 * restarted: like LabLink's allocator, it gets its PIN and command again, and restarts CRD.
 */
const DELIVERABLE = `(((state IN ('assigned', 'delivered') OR (state = 'configured' AND NOT reports_outcome)) AND crd_command IS NOT NULL) OR state = 'resetting')`;

/** The pending assignments and resets of these VMs: a read, so answering a held poll waits for no write. */
const SELECT_DELIVERIES = `
SELECT hostname, state, crd_command, pin, assignment_id::text AS assignment_id, email FROM vms
WHERE hostname = ANY(CAST(:hostnames AS text[])) AND ${DELIVERABLE}`;

/** Records that these assignments went out (only informative: both states are delivered again). */
export const MARK_DELIVERED = `
UPDATE vms SET state = 'delivered', delivered_at = now()
WHERE hostname = ANY(CAST(:hostnames AS text[])) AND assignment_id = ANY(CAST(:assignmentIds AS uuid[])) AND state = 'assigned'`;

/** The allocator's statements on the way to a delivery: a poll, the read that answers it, the mark that follows. */
export const DELIVERY_WARM_UP: WarmUp[] = [
  { statement: RECORD_POLL, params: { hostname: 'lablink-warm-up', aliveSeconds: 0, instanceId: null, reportsOutcome: null } },
  { statement: SELECT_DELIVERIES, params: { hostnames: ['lablink-warm-up'] } },
  { statement: MARK_DELIVERED, params: { hostnames: ['lablink-warm-up'], assignmentIds: [] } },
];

/** The VMs' pending assignments and resets; found again on every call until the agent reports. */
export async function findDeliveries(sql: Sql, hostnames: string[]): Promise<Map<string, Delivery>> {
  const rows = await sql.query<{
    hostname: string;
    state: VmState;
    crd_command: string;
    pin: string;
    assignment_id: string;
    email: string;
  }>(SELECT_DELIVERIES, { hostnames });
  return new Map(
    rows.map((row): [string, Delivery] => [
      row.hostname,
      row.state === 'resetting'
        ? { kind: 'reset' }
        : { kind: 'assignment', command: row.crd_command, pin: row.pin, assignmentId: row.assignment_id, email: row.email },
    ]),
  );
}

export async function markDelivered(sql: Sql, deliveries: { hostname: string; assignmentId: string }[]): Promise<void> {
  if (deliveries.length === 0) return;
  await sql.query(MARK_DELIVERED, {
    hostnames: deliveries.map((delivery) => delivery.hostname),
    assignmentIds: deliveries.map((delivery) => delivery.assignmentId),
  });
}

const SELECT_DELIVERABLE_AMONG = `
SELECT hostname FROM vms
WHERE hostname = ANY(CAST(:hostnames AS text[])) AND ${DELIVERABLE}`;

export async function selectDeliverable(sql: Sql, hostnames: string[]): Promise<string[]> {
  if (hostnames.length === 0) return [];
  const rows = await sql.query<{ hostname: string }>(SELECT_DELIVERABLE_AMONG, { hostnames });
  return rows.map((row) => row.hostname);
}

const COUNT_FREE_VMS = `
SELECT count(*)::int AS count FROM vms
WHERE ${FREE_VM}`;

export async function countFreeVms(sql: Sql): Promise<number> {
  const [row] = await sql.query<{ count: number }>(COUNT_FREE_VMS);
  return row.count;
}

/** Free VMs, VMs on their way (booting, starting, resetting, replacing), and when the first of those should be free. */
export interface Capacity {
  free: number;
  onTheWay: number;
  /** Null when no VM is on its way; 0 when one is due now. */
  readyInSeconds: number | null;
}

const SELECT_CAPACITY = `
WITH ${ON_THE_WAY}
SELECT count(*) FILTER (WHERE status = 'free')::int AS free,
  count(expected_free_at)::int AS on_the_way,
  ceil(extract(epoch FROM min(expected_free_at) - now()))::int AS ready_in_seconds
FROM due`;

export async function fleetCapacity(sql: Sql, staleSeconds = DEFAULT_STALE_SECONDS): Promise<Capacity> {
  const [row] = await sql.query<{ free: number; on_the_way: number; ready_in_seconds: number | null }>(SELECT_CAPACITY, { staleSeconds });
  // Overdue VMs are due now, not in the past.
  return {
    free: row.free,
    onTheWay: row.on_the_way,
    readyInSeconds: row.ready_in_seconds === null ? null : Math.max(0, row.ready_in_seconds),
  };
}

/**
 * The agent's report of how start-host ended. The one-time code is wiped either
 * way: after success it must not linger, after failure it is spent or bad.
 */
const RECORD_OUTCOME = `
UPDATE vms SET state = :outcome, error = :error, crd_command = NULL,
  -- Failures that a new command cannot fix are counted: after a few, the participant is sent to the instructor.
  start_failures = start_failures + CASE WHEN :outcome = 'error' AND state IN ('assigned', 'delivered') AND NOT coalesce(CAST(:error AS text), '') ~* '${COMMAND_REJECTED_PATTERN}' THEN 1 ELSE 0 END,
  configured_at = CASE WHEN :outcome = 'configured' THEN coalesce(configured_at, now()) END
WHERE hostname = :hostname AND assignment_id = CAST(:assignmentId AS uuid)
  AND (state IN ('assigned', 'delivered') OR state = :outcome)
RETURNING state, email`;

/** Stores how start-host ended; undefined when the assignment is not (or no longer) this VM's. */
export async function recordOutcome(
  sql: Sql,
  report: { hostname: string; assignmentId: string; outcome: ConfigurationOutcome; error: string | null },
): Promise<{ state: VmState; email: string } | undefined> {
  const [row] = await sql.query<{ state: VmState; email: string }>(RECORD_OUTCOME, {
    hostname: report.hostname,
    assignmentId: report.assignmentId,
    outcome: report.outcome,
    error: report.error,
  });
  return row;
}

/**
 * How far a participant's VM has got, in their words: `failed` is a failed start-host (a new
 * command fixes it), `broken` a VM that stopped working under them (the instructor must act),
 * `released` a VM the instructor took back.
 */

export function progressOf(state: VmState): Progress {
  switch (state) {
    case 'assigned':
      return 'assigned';
    case 'delivered':
      return 'configuring';
    case 'configured':
      return 'ready';
    case 'error':
      return 'failed';
    default:
      return 'released';
  }
}

/** One VM as the admin sees it: never the CRD command or the PIN. */
export interface VmSummary {
  hostname: string;
  /** What the instructor reads (see store/vm-status.ts); `state` is the assignment's step underneath. */
  status: VmStatus;
  state: VmState;
  email: string | null;
  error: string | null;
  registered_at: string;
  last_seen: string;
  assigned_at: string | null;
  delivered_at: string | null;
  configured_at: string | null;
  polling: boolean;
  instance_id: string | null;
  boot_id: string | null;
  uptime_seconds: number | null;
  crd_running: boolean | null;
  disk_free_mb: number | null;
  gpu_status: string | null;
  gpu_detail: string | null;
  in_use: boolean | null;
  health_reported_at: string | null;
  unhealthy_since: string | null;
  reboot_count: number;
  last_reboot_at: string | null;
  failed_at: string | null;
  failure: string | null;
  /** No heartbeat (or poll) for longer than the stale threshold. */
  stale: boolean;
  /** What the VM reported doing last (a boot step, `registering`, `waiting`), and since when. */
  step: string | null;
  step_at: string | null;
  /** Since when the VM waits for its agent to reset it (state `resetting`). */
  reset_requested_at: string | null;
  /** Error lines among its stored log lines. */
  log_errors: number;
  /** The admin asked the VM to run its setup again and its agent has not heard it yet. */
  setup_rerun_requested_at: string | null;
  /** The VM its participant was moved from: this one waits for their new command (state `error`), nothing failed. */
  moved_from: string | null;
  /** The warm pool stopped this VM, or is starting it again. */
  warm_pool: 'stopped' | 'starting' | null;
  /** Since when this failed VM waits for a spare to take over its name. */
  replacement_requested_at: string | null;
  /** How often a spare has been asked to take over this name. */
  replacement_count: number;
  /** A spare (an instance of the spares group) holds this name now. */
  spare: boolean;
  /** The failed instance the spare took over from. */
  replaced_instance_id: string | null;
}

/** A VM with no heartbeat for this long counts as stale. */
export const DEFAULT_STALE_SECONDS = 90;

/** Every VM for the admin: no CRD command and no PIN. */
const LIST_VMS = `
SELECT hostname, ${VM_STATUS_SQL} AS status, state, email, error, registered_at, last_seen, assigned_at, delivered_at, configured_at,
  alive_until > now() AS polling, instance_id, boot_id, uptime_seconds, crd_running, disk_free_mb, gpu_status, gpu_detail,
  in_use, health_reported_at, unhealthy_since, reboot_count, last_reboot_at, failed_at, failure,
  ${STALE} AS stale,
  step, step_at, reset_requested_at, (SELECT count(*) FROM vm_log_lines l WHERE l.hostname = vms.hostname AND l.level = 'error')::int AS log_errors,
  setup_rerun_requested_at, moved_from,
  CASE WHEN stopped_at IS NOT NULL THEN 'stopped' WHEN started_at IS NOT NULL THEN 'starting' END AS warm_pool,
  replacement_requested_at, replacement_count, spare, replaced_instance_id
FROM vms WHERE state <> 'retired' ORDER BY length(hostname), hostname`;

export async function listVms(sql: Sql, staleSeconds = DEFAULT_STALE_SECONDS): Promise<VmSummary[]> {
  return sql.query<VmSummary>(LIST_VMS, { staleSeconds });
}

/**
 * Deliveries to VMs that never report how start-host ended (LabLink's own client), older than
 * :afterSeconds, count as configured and the participant is told to connect. The command (its
 * one-time code spent) stays until the release, for a restarted client's poll (see DELIVERABLE).
 */
const FINALIZE_UNREPORTED_DELIVERIES = `
UPDATE vms SET state = 'configured', configured_at = now()
WHERE state = 'delivered' AND NOT reports_outcome AND delivered_at < now() - make_interval(secs => CAST(:afterSeconds AS float8))
RETURNING hostname, email`;

/** Treats old deliveries to VMs that never report as configured; returns those VMs. */
export async function finalizeUnreportedDeliveries(sql: Sql, afterSeconds: number): Promise<{ hostname: string; email: string }[]> {
  return sql.query(FINALIZE_UNREPORTED_DELIVERIES, { afterSeconds });
}
