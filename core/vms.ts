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
