import { generatePin } from '../core/pin';
import { Sql } from './sql';
import { FREE_VM, IN_LINE, ON_THE_WAY, VmStatus } from './vm-status';
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
  if (!Number.isInteger(turnSeconds) || turnSeconds < 30)
    throw new Error(`LABLINK_LINE_TURN_SECONDS must be a whole number of seconds, at least 30 (got ${raw}).`);
  return { ...DEFAULT_LINE_POLICY, turnSeconds };
}

const params = (policy: LinePolicy) => ({ turnSeconds: policy.turnSeconds, freshSeconds: policy.freshCommandSeconds });

/**
 * A participant who found no VM free takes the last place in line, with the command they
 * submitted. Their old places that no longer count (served, turn passed) make room first. No
 * row when the email already waits (from another browser: email alone opens nothing).
 */
const JOIN_LINE = `
WITH gone AS (
  DELETE FROM waiting_line WHERE (email = :email OR token = :token) AND NOT ${IN_LINE}
)
INSERT INTO waiting_line (email, token, crd_command, command_at) VALUES (:email, :token, :crdCommand, now())
ON CONFLICT DO NOTHING
RETURNING ticket::text AS ticket`;

/** Takes the last place in line; undefined when this email already waits (from another browser). */
export async function joinLine(
  sql: Sql,
  place: { email: string; crdCommand: string; token: string },
  policy: LinePolicy,
): Promise<string | undefined> {
  const [row] = await sql.query<{ ticket: string }>(JOIN_LINE, { ...place, turnSeconds: policy.turnSeconds });
  return row?.ticket;
}

/** The live place this browser (its retry token) holds in line, if any. */
export const SELECT_BROWSER_PLACE = `
SELECT ticket::text AS ticket, email FROM waiting_line WHERE token = :token AND ${IN_LINE}`;

/** The place this browser holds in line, if any. */
export async function browserPlace(sql: Sql, token: string, policy: LinePolicy): Promise<{ ticket: string; email: string } | undefined> {
  const [row] = await sql.query<{ ticket: string; email: string }>(SELECT_BROWSER_PLACE, { token, turnSeconds: policy.turnSeconds });
  return row;
}

/** The participant in line pastes a new command (their turn came, or they submitted the form again): it is fresh from now. */
const REFRESH_LINE_COMMAND = `
UPDATE waiting_line SET crd_command = :crdCommand, command_at = now()
WHERE ticket = CAST(:ticket AS uuid) AND ${IN_LINE}
RETURNING ticket::text AS ticket`;

/** A fresh command for a place in line; false when the place no longer counts (served, or its turn passed). */
export async function refreshLineCommand(sql: Sql, ticket: string, crdCommand: string, policy: LinePolicy): Promise<boolean> {
  return (await sql.query(REFRESH_LINE_COMMAND, { ticket, crdCommand, turnSeconds: policy.turnSeconds })).length > 0;
}

/** A place's command is still worth sending: Google's codes work for a few minutes only (:freshSeconds). */
const FRESH_COMMAND = `coalesce(command_at > now() - make_interval(secs => CAST(:freshSeconds AS float8)), false)`;

/**
 * Serves the line in one statement. The first places, as many as VMs are free, are at the front:
 * the oldest of them with a fresh command gets a free VM; the place and the VM are both locked with
 * SKIP LOCKED, so two servers never hand out one VM or one place twice, and a place behind the
 * front never gets a VM. Places at the front without a fresh command are called: their stale
 * command is wiped and their turn (:turnSeconds to paste a new one) starts.
 */
export const SERVE_LINE = `
WITH live AS (
  SELECT id, row_number() OVER (ORDER BY id) AS position FROM waiting_line WHERE ${IN_LINE}
), front AS (
  SELECT id FROM live WHERE position <= (SELECT count(*) FROM vms WHERE ${FREE_VM})
), entry AS (
  -- served_at is tested here too: a place another server served just after this statement read the
  -- line is re-checked as it is locked, and must not be served twice (the email's unique VM).
  SELECT id, email, token, crd_command FROM waiting_line
  WHERE id IN (SELECT id FROM front) AND served_at IS NULL AND ${FRESH_COMMAND}
  ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
), picked AS (
  SELECT hostname FROM vms WHERE ${FREE_VM} AND EXISTS (SELECT 1 FROM entry)
  ORDER BY registered_at, hostname LIMIT 1 FOR UPDATE SKIP LOCKED
), assigned AS (
  UPDATE vms SET state = 'assigned', email = entry.email, crd_command = entry.crd_command, pin = :pin,
    assignment_id = gen_random_uuid(), retry_token = entry.token, assigned_at = now(),
    delivered_at = NULL, configured_at = NULL, error = NULL, moved_from = NULL, previous_assignment_id = NULL, start_failures = 0
  FROM picked, entry WHERE vms.hostname = picked.hostname
  RETURNING vms.hostname, vms.assignment_id, vms.email, entry.id AS entry_id
), served AS (
  UPDATE waiting_line SET served_at = now(), assignment_id = assigned.assignment_id, crd_command = NULL
  FROM assigned WHERE waiting_line.id = assigned.entry_id
), called AS (
  UPDATE waiting_line SET called_at = now(), crd_command = NULL, command_at = NULL
  WHERE id IN (SELECT id FROM front) AND called_at IS NULL AND served_at IS NULL AND NOT ${FRESH_COMMAND}
)
SELECT hostname, assignment_id::text AS assignment_id, email FROM assigned`;

/**
 * Hands the free VMs to the front of the line, one atomic statement per VM, until no place at
 * the front has a fresh command. Any request may run it: it is the database that decides who is first.
 */
export async function serveLine(sql: Sql, policy: LinePolicy): Promise<{ hostname: string; email: string; assignmentId: string }[]> {
  const served: { hostname: string; email: string; assignmentId: string }[] = [];
  for (;;) {
    const [row] = await sql.query<{ hostname: string; assignment_id: string; email: string }>(SERVE_LINE, {
      ...params(policy),
      pin: generatePin(),
    });
    if (!row) return served;
    served.push({ hostname: row.hostname, email: row.email, assignmentId: row.assignment_id });
  }
}

const COUNT_IN_LINE = `SELECT count(*)::int AS count FROM waiting_line WHERE ${IN_LINE}`;

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

/** A place in line as its page shows it: where it stands, how long the line is, and how long a called turn has left. */
const SELECT_LINE_PLACE = `
WITH live AS (
  SELECT id, row_number() OVER (ORDER BY id) AS position FROM waiting_line WHERE ${IN_LINE}
)
SELECT e.email, e.assignment_id::text AS assignment_id, e.called_at IS NOT NULL AS called, live.position::int AS position,
  (SELECT count(*) FROM live)::int AS length,
  (SELECT count(*) FROM vms WHERE ${FREE_VM})::int AS free,
  ceil(extract(epoch FROM e.called_at + make_interval(secs => CAST(:turnSeconds AS float8)) - now()))::int AS turn_left_seconds
FROM waiting_line e LEFT JOIN live ON live.id = e.id WHERE e.ticket = CAST(:ticket AS uuid)`;

/** The VMs on their way to being free, soonest first: what a place in line can expect (:staleSeconds). */
const SELECT_ON_THE_WAY = `
WITH ${ON_THE_WAY}
SELECT status, greatest(0, ceil(extract(epoch FROM expected_free_at - now())))::int AS seconds FROM due
WHERE expected_free_at IS NOT NULL ORDER BY expected_free_at`;

/** Serves the line, then says where this place stands; undefined for an unknown ticket. */
export async function linePlace(
  sql: Sql,
  ticket: string,
  policy: LinePolicy,
  staleSeconds = DEFAULT_STALE_SECONDS,
): Promise<LinePlace | undefined> {
  await serveLine(sql, policy);
  const [row] = await sql.query<{
    email: string;
    assignment_id: string | null;
    called: boolean;
    position: number | null;
    length: number;
    free: number;
    turn_left_seconds: number | null;
  }>(SELECT_LINE_PLACE, { ticket, turnSeconds: policy.turnSeconds });
  if (!row) return undefined;
  if (row.assignment_id) return { kind: 'served', assignmentId: row.assignment_id };
  if (row.position === null) return { kind: 'passed', email: row.email };
  if (row.called) return { kind: 'called', email: row.email, turnLeftSeconds: Math.max(0, row.turn_left_seconds ?? 0) };
  const onTheWay = await sql.query<VmOnItsWay>(SELECT_ON_THE_WAY, { staleSeconds });
  return {
    kind: 'waiting',
    email: row.email,
    position: row.position,
    length: row.length,
    estimate: estimateWait(row.position, row.free, onTheWay),
    onTheWay,
  };
}
