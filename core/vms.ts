import { Sql } from './sql';
import * as statements from './statements';
import { ConfigurationOutcome } from './wire';

export type VmState = 'waiting' | 'assigned' | 'delivered' | 'configured' | 'error' | 'retired';

export interface Delivery {
  command: string;
  pin: string;
  assignmentId: string;
  email: string;
}

/** Records that a VM is polling and may be handed out until `aliveSeconds` from now. */
export async function recordPoll(sql: Sql, hostname: string, aliveSeconds: number): Promise<{ state: VmState; registered: boolean }> {
  const [row] = await sql.query<{ state: VmState; inserted: boolean }>(statements.RECORD_POLL, { hostname, aliveSeconds });
  return { state: row.state, registered: row.inserted };
}

/** The VM's pending assignment, marked delivered; again on every call until the agent reports. */
export async function takeDelivery(sql: Sql, hostname: string): Promise<Delivery | undefined> {
  const [row] = await sql.query<{ crd_command: string; pin: string; assignment_id: string; email: string }>(
    statements.TAKE_DELIVERY,
    { hostname },
  );
  return row && { command: row.crd_command, pin: row.pin, assignmentId: row.assignment_id, email: row.email };
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

/** How far a participant's VM has got, in their words. */
export type Progress = 'assigned' | 'configuring' | 'ready' | 'failed' | 'released';

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
  pin: string;
  progress: Progress;
  error: string | null;
}

export async function findAssignment(sql: Sql, assignmentId: string): Promise<AssignmentView | undefined> {
  const [row] = await sql.query<{ hostname: string; state: VmState; pin: string; error: string | null }>(statements.SELECT_ASSIGNMENT, { assignmentId });
  return row && { hostname: row.hostname, pin: row.pin, progress: progressOf(row.state), error: row.error };
}

/** One VM as the admin sees it: never the CRD command or the PIN. */
export interface VmSummary {
  hostname: string;
  state: VmState;
  email: string | null;
  error: string | null;
  registered_at: string;
  last_seen: string;
  assigned_at: string | null;
  delivered_at: string | null;
  configured_at: string | null;
  polling: boolean;
}

export async function listVms(sql: Sql): Promise<VmSummary[]> {
  return sql.query<VmSummary>(statements.LIST_VMS);
}

/** Unassigns a VM; undefined when no VM has that name. */
export async function releaseVm(sql: Sql, hostname: string): Promise<{ previousEmail: string | null } | undefined> {
  const [row] = await sql.query<{ previous_email: string | null }>(statements.RELEASE_VM, { hostname });
  return row && { previousEmail: row.previous_email };
}
