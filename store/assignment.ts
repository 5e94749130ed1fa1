import { setTimeout as sleep } from 'node:timers/promises';
import { PROBE_EMAIL } from '../contract/wire';
import { CrdCommand, formatCrdCommand } from '../core/crd-command';
import { generatePin } from '../core/pin';
import { generateSecret } from '../core/secrets';
import { InvalidRequest, VmRequestInput, validateVmRequest } from '../core/vm-request';
import {
  AddressLimit,
  GIVE_BACK_ADDRESS_GRANT,
  SELECT_BROWSER_HOLDING,
  TAKE_ADDRESS_GRANT,
  giveBackAddressGrant,
  takeAddressGrant,
  vmHeldByBrowser,
} from './client-limits';
import { recordEmailAttempt } from './email-attempts';
import { Sql, UniqueViolationError, WarmUp } from './sql';
import { FREE_VM, IN_LINE, STALE, START_FAILURES_BEFORE_HELP } from './vm-status';
import { Progress } from '../contract/page-polling';
import { DEFAULT_STALE_SECONDS, VmState, countFreeVms, progressOf } from './vms';
import {
  DEFAULT_LINE_POLICY,
  LinePolicy,
  SELECT_BROWSER_PLACE,
  browserPlace,
  countInLine,
  joinLine,
  refreshLineCommand,
  serveLine,
} from './waiting-line';

/** What generateSecret() makes: 32 URL-safe characters. */
const RETRY_TOKEN_PATTERN = /^[A-Za-z0-9_-]{32}$/;

type AssignRow = { hostname: string; pin: string; assignment_id: string; outcome: AssignmentOutcome | 'retry_refused' | 'held_elsewhere' };
/** A double click's second request, without the first one's token yet, still finds the VM this long after it was assigned. */
const DOUBLE_SUBMIT_SECONDS = 10;
/** Rows stay locked only while another request commits: milliseconds, even under load. */
const LOCKED_RETRY_WINDOW_MS = 2_000;

/** `assigned`: a free VM was taken; `existing`: the email already had one; `retried`: its failed VM got the new command. */
export type AssignmentOutcome = 'assigned' | 'existing' | 'retried';

export type VmRequestResult =
  | {
      kind: 'assigned';
      hostname: string;
      pin: string;
      email: string;
      assignmentId: string;
      outcome: AssignmentOutcome;
      retryToken?: string;
    }
  | ({ kind: 'invalid' } & InvalidRequest)
  /** The email's VM failed, and this request does not come from the browser that got it. */
  | { kind: 'retry_refused'; hostname: string }
  /** The email has a VM, requested from another browser: its name (for the dashboard) and PIN are not shown to the asker. */
  | { kind: 'held_elsewhere'; hostname: string }
  /** This browser already holds a VM under another email: one VM per browser. */
  | { kind: 'browser_holds'; hostname: string; assignmentId: string }
  /** The client's address took its share of new VMs for now; nothing was stored. */
  | { kind: 'address_limited'; retryAfterSeconds: number }
  | { kind: 'no_vm_free' }
  /** No VM was free: the participant has a place in the waiting line (`retryToken`: the new place's browser token). */
  | { kind: 'in_line'; ticket: string; retryToken?: string }
  /** The email already waits in line, from another browser: nothing was stored. */
  | { kind: 'in_line_elsewhere' }
  /** This browser already waits in line under another email: one place per browser. */
  | { kind: 'browser_in_line'; ticket: string };

/** Who asks: new VMs per address are bounded when both are given. */
export interface RequestClient {
  address?: string;
  addressLimit?: AddressLimit;
  /** When set, a participant who finds no VM free joins the waiting line. */
  line?: LinePolicy;
}

const WARM_UP_ADDRESS = 'lablink-warm-up';
/** A window so long it began in 2000: the warm-up's sweep of old windows deletes (and locks) no one's grants. */
const WARM_UP_WINDOW_SECONDS = 2 ** 31;

/**
 * Assignment in one statement: the VM this email already has, otherwise the oldest free VM,
 * locked with SKIP LOCKED so concurrent submissions never pick the same row. A VM whose setup
 * failed is re-armed with a new command only when the request carries its retry token
 * (:presentedRetryToken), which only the submitter of the last command received: knowing someone's email is
 * not enough to put your own Google account on their VM. The token is rotated on every use.
 * A free VM is taken only when :mayAssign (the client's address has a grant left).
 */
const ASSIGN_VM = `
WITH existing AS (
  SELECT hostname, pin, assignment_id, state,
    -- Email alone opens nothing: only the browser holding the token (or a double click's second request) sees the VM.
    (retry_token = :presentedRetryToken OR assigned_at > now() - make_interval(secs => CAST(:doubleSubmitSeconds AS float8))) AS holder
  FROM vms WHERE email = :email FOR UPDATE
), retried AS (
  UPDATE vms SET state = 'assigned', crd_command = :crdCommand, assignment_id = gen_random_uuid(),
    retry_token = :retryToken, assigned_at = now(), delivered_at = NULL, configured_at = NULL, error = NULL
  WHERE email = :email AND state = 'error' AND retry_token = :presentedRetryToken
  RETURNING hostname, pin, assignment_id
), picked AS (
  SELECT hostname FROM vms
  WHERE ${FREE_VM}
    AND NOT EXISTS (SELECT 1 FROM existing)
    AND CAST(:mayAssign AS boolean)
    -- Nobody passes the waiting line: while it holds anyone, free VMs go to it (SERVE_LINE).
    AND NOT EXISTS (SELECT 1 FROM waiting_line WHERE ${IN_LINE})
  ORDER BY registered_at, hostname
  LIMIT 1
  FOR UPDATE SKIP LOCKED
), assigned AS (
  UPDATE vms SET state = 'assigned', email = :email, crd_command = :crdCommand, pin = :pin,
    assignment_id = gen_random_uuid(), retry_token = :retryToken, assigned_at = now(),
    delivered_at = NULL, configured_at = NULL, error = NULL, moved_from = NULL, previous_assignment_id = NULL, start_failures = 0
  FROM picked WHERE vms.hostname = picked.hostname
  RETURNING vms.hostname, vms.pin, vms.assignment_id
)
SELECT hostname, pin, assignment_id::text AS assignment_id, 'existing' AS outcome FROM existing WHERE state <> 'error' AND holder
UNION ALL
SELECT hostname, NULL, NULL, 'held_elsewhere' FROM existing WHERE state <> 'error' AND NOT coalesce(holder, false)
UNION ALL
SELECT hostname, pin, assignment_id::text, 'retried' FROM retried
UNION ALL
SELECT hostname, NULL, NULL, 'retry_refused' FROM existing WHERE state = 'error' AND NOT EXISTS (SELECT 1 FROM retried)
UNION ALL
SELECT hostname, pin, assignment_id::text, 'assigned' FROM assigned`;

/**
 * A free VM that the warm-up's assignment picks before any other (registered at -infinity), so
 * the assignment runs whole even when no VM is free yet: its triggers (history, notification)
 * are compiled on the connection then, not during the first participant's post.
 */
const WARM_UP_FREE_VM = `INSERT INTO vms (hostname, alive_until, registered_at) VALUES ('lablink-warm-up-assignment', 'infinity', '-infinity')`;

/** Every statement of a browser's form post that gets a VM, as `requestVm` runs them: the browser's VM and place in line, the address's grant, the assignment, a grant given back. */
export const ASSIGNMENT_WARM_UP: WarmUp[] = [
  { statement: WARM_UP_FREE_VM },
  { statement: SELECT_BROWSER_HOLDING, params: { retryToken: generateSecret(), email: 'warm-up@example.invalid' } },
  { statement: SELECT_BROWSER_PLACE, params: { token: generateSecret(), turnSeconds: DEFAULT_LINE_POLICY.turnSeconds } },
  { statement: TAKE_ADDRESS_GRANT, params: { address: WARM_UP_ADDRESS, windowSeconds: WARM_UP_WINDOW_SECONDS, limit: 1 } },
  {
    statement: ASSIGN_VM,
    params: {
      email: 'warm-up@example.invalid',
      crdCommand: '',
      pin: generatePin(),
      presentedRetryToken: null,
      retryToken: generateSecret(),
      mayAssign: true,
      doubleSubmitSeconds: DOUBLE_SUBMIT_SECONDS,
      turnSeconds: DEFAULT_LINE_POLICY.turnSeconds,
    },
  },
  { statement: GIVE_BACK_ADDRESS_GRANT, params: { address: WARM_UP_ADDRESS, windowStart: '2000-01-01T00:00:00Z' } },
];

/**
 * A participant's request: validate, then one atomic statement that returns the VM
 * this email already has or assigns a free one with a fresh PIN.
 */
export async function requestVm(sql: Sql, input: VmRequestInput, client: RequestClient = {}): Promise<VmRequestResult> {
  const valid = validateVmRequest(input);
  if (!valid.ok)
    return { kind: 'invalid', errors: valid.errors, ...(valid.emailSuggestion ? { emailSuggestion: valid.emailSuggestion } : {}) };

  const presentedRetryToken = typeof input.retryToken === 'string' && RETRY_TOKEN_PATTERN.test(input.retryToken) ? input.retryToken : null;
  if (presentedRetryToken) {
    const held = await vmHeldByBrowser(sql, presentedRetryToken, valid.email);
    if (held) return { kind: 'browser_holds', ...held };
    const place = client.line && (await browserPlace(sql, presentedRetryToken, client.line));
    if (place) return submitFromLine(sql, place, valid, client.line!);
  }
  const grant = client.address && client.addressLimit ? await takeAddressGrant(sql, client.address, client.addressLimit) : undefined;
  let result: VmRequestResult | undefined;
  try {
    result = await assignOrFind(sql, valid, presentedRetryToken, grant?.granted ?? true, client.line ?? DEFAULT_LINE_POLICY);
    // Refused by the address's limit, nothing stored: not even a place in line.
    if (result.kind === 'no_vm_free' && client.line && (grant?.granted ?? true)) result = await takePlaceInLine(sql, valid, client.line);
  } finally {
    // A request that took no new VM (or failed) leaves the address's count as it found it.
    if (grant?.granted && !(result?.kind === 'assigned' && result.outcome === 'assigned')) await giveBackAddressGrant(sql, grant);
  }
  if (grant && !grant.granted && result.kind === 'no_vm_free')
    return { kind: 'address_limited', retryAfterSeconds: grant.retryAfterSeconds };
  return result;
}

/** The last place in line, with this command; the front of the line (this place, if VMs are free) is served at once. */
async function takePlaceInLine(sql: Sql, valid: { email: string; command: CrdCommand }, policy: LinePolicy): Promise<VmRequestResult> {
  const token = generateSecret();
  const ticket = await joinLine(sql, { email: valid.email, crdCommand: formatCrdCommand(valid.command), token }, policy);
  if (!ticket) return { kind: 'in_line_elsewhere' };
  await serveLine(sql, policy);
  return { kind: 'in_line', ticket, retryToken: token };
}

/** A browser in line submits again (its turn came, or it could not wait): its command is fresh from now, and the line is served. */
async function submitFromLine(
  sql: Sql,
  place: { ticket: string; email: string },
  valid: { email: string; command: CrdCommand },
  policy: LinePolicy,
): Promise<VmRequestResult> {
  if (place.email !== valid.email) return { kind: 'browser_in_line', ticket: place.ticket };
  await refreshLineCommand(sql, place.ticket, formatCrdCommand(valid.command), policy);
  await serveLine(sql, policy);
  return { kind: 'in_line', ticket: place.ticket };
}

/** The email's own VM, or a free one when `mayAssign`, retrying briefly past rows other requests hold. */
async function assignOrFind(
  sql: Sql,
  valid: { email: string; command: CrdCommand },
  presentedRetryToken: string | null,
  mayAssign: boolean,
  line: LinePolicy,
): Promise<VmRequestResult> {
  const params = {
    email: valid.email,
    crdCommand: formatCrdCommand(valid.command),
    pin: generatePin(),
    presentedRetryToken,
    retryToken: generateSecret(),
    mayAssign,
    doubleSubmitSeconds: DOUBLE_SUBMIT_SECONDS,
    turnSeconds: line.turnSeconds,
  };
  const assignOnce = async (): Promise<AssignRow[]> => {
    try {
      return await sql.query<AssignRow>(ASSIGN_VM, params);
    } catch (error) {
      // The same email submitted twice at once: the loser finds the winner's VM on a second try.
      if (!(error instanceof UniqueViolationError)) throw error;
      return sql.query<AssignRow>(ASSIGN_VM, params);
    }
  };
  let [row] = await assignOnce();
  // SKIP LOCKED passes over rows other requests hold; a free VM still counted means some of
  // those requests gave their row back (same email racing), so look again before refusing.
  const deadline = Date.now() + LOCKED_RETRY_WINDOW_MS;
  // Free VMs while people wait in line are theirs (SERVE_LINE), not worth a retry.
  while (!row && mayAssign && Date.now() < deadline && (await countFreeVms(sql)) > 0 && (await countInLine(sql, line)) === 0) {
    await sleep(10 + Math.random() * 20);
    [row] = await assignOnce();
  }
  // The request that raced ours may have committed by now: it would be this email's VM.
  if (!row) [row] = await assignOnce();
  if (!row) return { kind: 'no_vm_free' };
  if (row.outcome === 'retry_refused' || row.outcome === 'held_elsewhere') {
    await recordEmailAttempt(sql, valid.email, row.hostname);
    return { kind: row.outcome, hostname: row.hostname };
  }
  return {
    kind: 'assigned',
    hostname: row.hostname,
    pin: row.pin,
    email: valid.email,
    assignmentId: row.assignment_id,
    outcome: row.outcome,
    // Only the request that stored this command may replace it later.
    ...(row.outcome === 'existing' ? {} : { retryToken: params.retryToken }),
  };
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

/** A participant's view of their assignment, found by its unguessable id, or by the id it had before a move. */
const SELECT_ASSIGNMENT = `
SELECT hostname, state, pin, email, error, moved_from, assignment_id::text AS assignment_id, assigned_at, failure, start_failures,
  failed_at IS NOT NULL AS failed,
  ${STALE} AS stale,
  floor(extract(epoch FROM now() - assigned_at))::int AS elapsed_seconds
FROM vms
WHERE assignment_id = CAST(:assignmentId AS uuid) OR previous_assignment_id = CAST(:assignmentId AS uuid)
ORDER BY (assignment_id = CAST(:assignmentId AS uuid)) DESC LIMIT 1`;

/** An assignment the instructor took back: its link still says what happened, and whether the VM wipes itself. */
const SELECT_RELEASED_ASSIGNMENT = `
SELECT r.hostname, r.released_at, coalesce(v.reports_outcome, true) AS wiped
FROM released_assignments r LEFT JOIN vms v ON v.hostname = r.hostname WHERE r.assignment_id = CAST(:assignmentId AS uuid)`;

/** A participant's assignment by its id, by the id it had before a move, or as taken back; undefined when unknown. */
export async function findAssignment(
  sql: Sql,
  assignmentId: string,
  staleSeconds = DEFAULT_STALE_SECONDS,
): Promise<AssignmentView | undefined> {
  const [row] = await sql.query<AssignmentRow>(SELECT_ASSIGNMENT, { assignmentId, staleSeconds });
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
  const [released] = await sql.query<{ hostname: string; wiped: boolean }>(SELECT_RELEASED_ASSIGNMENT, { assignmentId });
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

/** One participant's time on one VM: taken back (`ended_at`), moved on (`moved_to`), or still running. */
export interface AssignmentRecord {
  hostname: string;
  email: string;
  assigned_at: string;
  ended_at: string | null;
  moved_from: string | null;
  moved_to: string | null;
}

/** Every assignment ever made (the trigger of migration 13 records them), with the VM a moved participant went to; the go/no-go probe is nobody. */
const SELECT_ASSIGNMENT_HISTORY = `
SELECT h.hostname, h.email, h.assigned_at, h.ended_at, h.moved_from,
  (SELECT n.hostname FROM assignment_history n
   WHERE n.email = h.email AND n.moved_from = h.hostname AND h.ended_at IS NOT NULL AND n.assigned_at >= h.ended_at
   ORDER BY n.id LIMIT 1) AS moved_to
FROM assignment_history h WHERE h.email <> '${PROBE_EMAIL}' ORDER BY h.id`;

/** Every assignment ever made, oldest first. */
export async function listAssignmentHistory(sql: Sql): Promise<AssignmentRecord[]> {
  return sql.query<AssignmentRecord>(SELECT_ASSIGNMENT_HISTORY);
}
