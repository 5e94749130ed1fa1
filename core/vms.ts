import { Sql, WarmUp } from './sql';
import * as statements from './statements';
import { START_FAILURES_BEFORE_HELP, VmStatus } from './vm-status';
import { ConfigurationOutcome, VmResetReport } from './wire';

export type VmState = 'waiting' | 'assigned' | 'delivered' | 'configured' | 'error' | 'retired' | 'resetting';

/** What a VM's held poll is answered with: its participant's assignment, or the order to reset itself. */
export type Delivery = { kind: 'assignment'; command: string; pin: string; assignmentId: string; email: string } | { kind: 'reset' };

/** Records that a VM is polling and may be handed out until `aliveSeconds` from now (0: registered, not yet free). */
export async function recordPoll(
  sql: Sql,
  hostname: string,
  aliveSeconds: number,
  instanceId: string | null = null,
  /** Whether the VM's agent says it reports start-host's outcome; null keeps what is known. */
  reportsOutcome: boolean | null = null,
): Promise<{ state: VmState; registered: boolean }> {
  const [row] = await sql.query<{ state: VmState; inserted: boolean }>(statements.RECORD_POLL, { hostname, aliveSeconds, instanceId, reportsOutcome });
  return { state: row.state, registered: row.inserted };
}

/** The allocator's statements on the way to a delivery: a poll, the read that answers it, the mark that follows. */
export const DELIVERY_WARM_UP: WarmUp[] = [
  { statement: statements.RECORD_POLL, params: { hostname: 'lablink-warm-up', aliveSeconds: 0, instanceId: null, reportsOutcome: null } },
  { statement: statements.SELECT_DELIVERIES, params: { hostnames: ['lablink-warm-up'] } },
  { statement: statements.MARK_DELIVERED, params: { hostnames: ['lablink-warm-up'], assignmentIds: [] } },
];

/** The VMs' pending assignments and resets; found again on every call until the agent reports. */
export async function findDeliveries(sql: Sql, hostnames: string[]): Promise<Map<string, Delivery>> {
  const rows = await sql.query<{ hostname: string; state: VmState; crd_command: string; pin: string; assignment_id: string; email: string }>(
    statements.SELECT_DELIVERIES,
    { hostnames },
  );
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
  await sql.query(statements.MARK_DELIVERED, {
    hostnames: deliveries.map((delivery) => delivery.hostname),
    assignmentIds: deliveries.map((delivery) => delivery.assignmentId),
  });
}

export async function selectDeliverable(sql: Sql, hostnames: string[]): Promise<string[]> {
  if (hostnames.length === 0) return [];
  const rows = await sql.query<{ hostname: string }>(statements.SELECT_DELIVERABLE_AMONG, { hostnames });
  return rows.map((row) => row.hostname);
}

export async function countFreeVms(sql: Sql): Promise<number> {
  const [row] = await sql.query<{ count: number }>(statements.COUNT_FREE_VMS);
  return row.count;
}

/** Free VMs, VMs on their way (booting, starting, resetting, replacing), and when the first of those should be free. */
export interface Capacity {
  free: number;
  onTheWay: number;
  /** Null when no VM is on its way; 0 when one is due now. */
  readyInSeconds: number | null;
}

export async function fleetCapacity(sql: Sql, staleSeconds = DEFAULT_STALE_SECONDS): Promise<Capacity> {
  const [row] = await sql.query<{ free: number; on_the_way: number; ready_in_seconds: number | null }>(statements.SELECT_CAPACITY, { staleSeconds });
  // Overdue VMs are due now, not in the past.
  return { free: row.free, onTheWay: row.on_the_way, readyInSeconds: row.ready_in_seconds === null ? null : Math.max(0, row.ready_in_seconds) };
}

/** Stores how start-host ended; undefined when the assignment is not (or no longer) this VM's. */
export async function recordOutcome(
  sql: Sql,
  report: { hostname: string; assignmentId: string; outcome: ConfigurationOutcome; error: string | null },
): Promise<{ state: VmState; email: string } | undefined> {
  const [row] = await sql.query<{ state: VmState; email: string }>(statements.RECORD_OUTCOME, {
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
export type Progress = 'assigned' | 'configuring' | 'ready' | 'failed' | 'broken' | 'released';

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

export interface AssignmentView {
  hostname: string;
  /** Empty once the VM was taken back. */
  pin: string;
  email: string | null;
  progress: Progress;
  error: string | null;
  /** Set when the participant was moved here from a failed VM. */
  movedFrom: string | null;
  /** The assignment's current id (it changes when the participant is moved or retries). */
  assignmentId: string;
  /** Seconds since the VM was assigned (or since the last retry or move). */
  elapsedSeconds: number | null;
  /** Why the VM is `broken`. */
  problem: string | null;
  /** Taken back: whether the VM wipes itself (LabLink's own client cannot); null before. */
  wiped: boolean | null;
  /** Start-host failed on this VM more than once for a reason a new command cannot fix: the instructor must act. */
  stuck: boolean;
}

type AssignmentRow = {
  hostname: string;
  state: VmState;
  pin: string;
  email: string;
  error: string | null;
  moved_from: string | null;
  assignment_id: string;
  failed: boolean;
  failure: string | null;
  stale: boolean;
  elapsed_seconds: number | null;
  start_failures: number;
};

/** A participant's assignment by its id, by the id it had before a move, or as taken back; undefined when unknown. */
export async function findAssignment(sql: Sql, assignmentId: string, staleSeconds = DEFAULT_STALE_SECONDS): Promise<AssignmentView | undefined> {
  const [row] = await sql.query<AssignmentRow>(statements.SELECT_ASSIGNMENT, { assignmentId, staleSeconds });
  if (row) {
    const broken = row.failed || row.stale;
    return {
      hostname: row.hostname,
      pin: row.pin,
      email: row.email,
      progress: broken ? 'broken' : progressOf(row.state),
      error: row.error,
      movedFrom: row.moved_from,
      assignmentId: row.assignment_id,
      elapsedSeconds: row.elapsed_seconds,
      problem: broken ? (row.failure ?? 'It stopped reporting to LabLink.') : null,
      wiped: null,
      stuck: row.start_failures >= START_FAILURES_BEFORE_HELP,
    };
  }
  const [released] = await sql.query<{ hostname: string; wiped: boolean }>(statements.SELECT_RELEASED_ASSIGNMENT, { assignmentId });
  return (
    released && {
      hostname: released.hostname,
      pin: '',
      email: null,
      progress: 'released',
      error: null,
      movedFrom: null,
      assignmentId,
      elapsedSeconds: null,
      problem: null,
      wiped: released.wiped,
      stuck: false,
    }
  );
}

/** One VM as the admin sees it: never the CRD command or the PIN. */
export interface VmSummary {
  hostname: string;
  /** What the instructor reads (see core/vm-status.ts); `state` is the assignment's step underneath. */
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

export async function listVms(sql: Sql, staleSeconds = DEFAULT_STALE_SECONDS): Promise<VmSummary[]> {
  return sql.query<VmSummary>(statements.LIST_VMS, { staleSeconds });
}

export type ResetScope = { scope: 'one'; hostname: string } | { scope: 'released' } | { scope: 'all' } | { scope: 'idle'; assignmentIds: string[] } | { scope: 'done'; assignmentId: string; retryToken: string };

/**
 * Takes VMs back and has their agents reset them (see RESET_VMS); returns each VM taken, the
 * participant it had, and whether it resets (a VM that cannot is left out of the pool, with
 * the reason as its failure). Empty when no VM is in scope (an unknown name, say).
 */
export async function resetVms(sql: Sql, target: ResetScope): Promise<{ hostname: string; previousEmail: string | null; resetting: boolean; failure: string | null }[]> {
  const rows = await sql.query<{ hostname: string; previous_email: string | null; can_reset: boolean; failure: string | null }>(statements.RESET_VMS, {
    scope: target.scope,
    hostname: target.scope === 'one' ? target.hostname : null,
    assignmentIds: target.scope === 'idle' ? target.assignmentIds : target.scope === 'done' ? [target.assignmentId] : [],
    retryToken: target.scope === 'done' ? target.retryToken : null,
  });
  return rows.map((row) => ({ hostname: row.hostname, previousEmail: row.previous_email, resetting: row.can_reset, failure: row.failure }));
}

export type ResetOutcome = VmResetReport['outcome'];

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
  const [row] = await sql.query<{ failed: boolean; failure: string | null }>(statements.RECORD_RESET, {
    hostname,
    outcome,
    failure: outcome === 'failed' ? `Reset failed: ${message ?? 'no reason given'}` : null,
  });
  return row;
}

/** Treats old deliveries to VMs that never report as configured; returns those VMs. */
export async function finalizeUnreportedDeliveries(sql: Sql, afterSeconds: number): Promise<{ hostname: string; email: string }[]> {
  return sql.query(statements.FINALIZE_UNREPORTED_DELIVERIES, { afterSeconds });
}

/** One participant's time on one VM: taken back (`ended_at`), moved on (`moved_to`), or still running. */
export interface AssignmentRecord {
  hostname: string;
  email: string;
  assigned_at: string;
  ended_at: string | null;
  moved_from: string | null;
  moved_to: string | null;
}

/** Every assignment ever made, oldest first. */
export async function listAssignmentHistory(sql: Sql): Promise<AssignmentRecord[]> {
  return sql.query<AssignmentRecord>(statements.SELECT_ASSIGNMENT_HISTORY);
}
