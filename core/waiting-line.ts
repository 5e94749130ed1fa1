import { generatePin } from './pin';
import { Sql } from './sql';
import { COUNT_IN_LINE, JOIN_LINE, REFRESH_LINE_COMMAND, SELECT_BROWSER_PLACE, SELECT_LINE_PLACE, SELECT_ON_THE_WAY, SERVE_LINE } from './statements';
import { VmStatus } from './vm-status';
import { DEFAULT_STALE_SECONDS } from './vms';

/** How the waiting line treats the participants in it. */
export interface LinePolicy {
  /** Once called (a VM is free for them and their command may have expired), how long they have to paste a fresh one. */
  turnSeconds: number;
  /** A command submitted this recently is sent as it is; an older one is asked for again. */
  freshCommandSeconds: number;
}

/** Five minutes to paste; Google's codes are short-lived, so one older than two minutes is asked for again. */
export const DEFAULT_LINE_POLICY: LinePolicy = { turnSeconds: 300, freshCommandSeconds: 120 };

/** `LABLINK_LINE_TURN_SECONDS` (whole seconds, at least 30) sets the turn; the default otherwise. */
export function linePolicyFromEnv(env: Record<string, string | undefined>): LinePolicy {
  const raw = env.LABLINK_LINE_TURN_SECONDS;
  if (raw === undefined || raw === '') return DEFAULT_LINE_POLICY;
  const turnSeconds = Number(raw);
  if (!Number.isInteger(turnSeconds) || turnSeconds < 30) throw new Error(`LABLINK_LINE_TURN_SECONDS must be a whole number of seconds, at least 30 (got ${raw}).`);
  return { ...DEFAULT_LINE_POLICY, turnSeconds };
}

const params = (policy: LinePolicy) => ({ turnSeconds: policy.turnSeconds, freshSeconds: policy.freshCommandSeconds });

/** Takes the last place in line; undefined when this email already waits (from another browser). */
export async function joinLine(sql: Sql, place: { email: string; crdCommand: string; token: string }, policy: LinePolicy): Promise<string | undefined> {
  const [row] = await sql.query<{ ticket: string }>(JOIN_LINE, { ...place, turnSeconds: policy.turnSeconds });
  return row?.ticket;
}

/** The place this browser holds in line, if any. */
export async function browserPlace(sql: Sql, token: string, policy: LinePolicy): Promise<{ ticket: string; email: string } | undefined> {
  const [row] = await sql.query<{ ticket: string; email: string }>(SELECT_BROWSER_PLACE, { token, turnSeconds: policy.turnSeconds });
  return row;
}

/** A fresh command for a place in line; false when the place no longer counts (served, or its turn passed). */
export async function refreshLineCommand(sql: Sql, ticket: string, crdCommand: string, policy: LinePolicy): Promise<boolean> {
  return (await sql.query(REFRESH_LINE_COMMAND, { ticket, crdCommand, turnSeconds: policy.turnSeconds })).length > 0;
}

/**
 * Hands the free VMs to the front of the line, one atomic statement per VM, until no place at
 * the front has a fresh command. Any request may run it: it is the database that decides who is first.
 */
export async function serveLine(sql: Sql, policy: LinePolicy): Promise<{ hostname: string; email: string; assignmentId: string }[]> {
  const served: { hostname: string; email: string; assignmentId: string }[] = [];
  for (;;) {
    const [row] = await sql.query<{ hostname: string; assignment_id: string; email: string }>(SERVE_LINE, { ...params(policy), pin: generatePin() });
    if (!row) return served;
    served.push({ hostname: row.hostname, email: row.email, assignmentId: row.assignment_id });
  }
}

export async function countInLine(sql: Sql, policy: LinePolicy): Promise<number> {
  const [row] = await sql.query<{ count: number }>(COUNT_IN_LINE, { turnSeconds: policy.turnSeconds });
  return row.count;
}

/** A VM on its way to being free, and in how many seconds it should be (its kind's usual duration from when it set off). */
export interface VmOnItsWay {
  status: VmStatus;
  seconds: number;
}

/** When the VM for a place should come: the VMs on their way go to the places in order, after the free ones. */
export function estimateWait(position: number, free: number, onTheWay: readonly VmOnItsWay[]): VmOnItsWay | undefined {
  if (position <= free) return { status: 'free', seconds: 0 };
  return onTheWay[position - free - 1];
}

export type LinePlace =
  | { kind: 'served'; assignmentId: string }
  /** Served or not, the place no longer counts: the turn ran out before a fresh command came. */
  | { kind: 'passed'; email: string }
  | { kind: 'called'; email: string; turnLeftSeconds: number }
  | { kind: 'waiting'; email: string; position: number; length: number; estimate?: VmOnItsWay; onTheWay: VmOnItsWay[] };

/** Serves the line, then says where this place stands; undefined for an unknown ticket. */
export async function linePlace(sql: Sql, ticket: string, policy: LinePolicy, staleSeconds = DEFAULT_STALE_SECONDS): Promise<LinePlace | undefined> {
  await serveLine(sql, policy);
  const [row] = await sql.query<{ email: string; assignment_id: string | null; called: boolean; position: number | null; length: number; free: number; turn_left_seconds: number | null }>(
    SELECT_LINE_PLACE,
    { ticket, turnSeconds: policy.turnSeconds },
  );
  if (!row) return undefined;
  if (row.assignment_id) return { kind: 'served', assignmentId: row.assignment_id };
  if (row.position === null) return { kind: 'passed', email: row.email };
  if (row.called) return { kind: 'called', email: row.email, turnLeftSeconds: Math.max(0, row.turn_left_seconds ?? 0) };
  const onTheWay = await sql.query<VmOnItsWay>(SELECT_ON_THE_WAY, { staleSeconds });
  return { kind: 'waiting', email: row.email, position: row.position, length: row.length, estimate: estimateWait(row.position, row.free, onTheWay), onTheWay };
}
