import { setTimeout as sleep } from 'node:timers/promises';
import { CrdCommand, parseCrdCommand, formatCrdCommand } from './crd-command';
import { parseEmail } from './email';
import { generatePin } from './pin';
import { Sql, UniqueViolationError, WarmUp } from './sql';
import { ASSIGN_VM, SELECT_BROWSER_PLACE } from './statements';
import { countFreeVms } from './vms';
import { generateSecret } from './secrets';
import { AddressLimit, GIVE_BACK_ADDRESS_GRANT, SELECT_BROWSER_HOLDING, TAKE_ADDRESS_GRANT, giveBackAddressGrant, takeAddressGrant, vmHeldByBrowser } from './client-limits';
import { recordEmailAttempt } from './email-attempts';
import { DEFAULT_LINE_POLICY, LinePolicy, browserPlace, countInLine, joinLine, refreshLineCommand, serveLine } from './waiting-line';

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
  | { kind: 'assigned'; hostname: string; pin: string; email: string; assignmentId: string; outcome: AssignmentOutcome; retryToken?: string }
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

export type RequestField = 'email' | 'crd_command';
/** Every field's problem at once, so a participant fixes them in one go. */
export interface InvalidRequest {
  errors: Partial<Record<RequestField, string>>;
  /** A likely meant email, offered next to the field. */
  emailSuggestion?: string;
}

export interface VmRequestInput {
  email: unknown;
  crdCommand: unknown;
  /** The email exactly as typed, when the participant confirmed it despite a suggested correction. */
  emailConfirmed?: unknown;
  /** The retry token the browser holds from its last submission (form field or cookie), if any. */
  retryToken?: unknown;
}

/** Who asks: new VMs per address are bounded when both are given. */
export interface RequestClient {
  address?: string;
  addressLimit?: AddressLimit;
  /** When set, a participant who finds no VM free joins the waiting line. */
  line?: LinePolicy;
}

type ValidRequest = { ok: true; email: string; command: CrdCommand } | ({ ok: false } & InvalidRequest);

/** Checks every field without touching the database. */
export function validateVmRequest(input: VmRequestInput): ValidRequest {
  const email = parseEmail(input.email, input.emailConfirmed);
  const command = parseCrdCommand(input.crdCommand);
  if (email.ok && command.ok) return { ok: true, email: email.email, command: command.command };
  return {
    ok: false,
    errors: { ...(email.ok ? {} : { email: email.message }), ...(command.ok ? {} : { crd_command: command.message }) },
    ...(!email.ok && email.suggestion ? { emailSuggestion: email.suggestion } : {}),
  };
}

const WARM_UP_ADDRESS = 'lablink-warm-up';
/** A window so long it began in 2000: the warm-up's sweep of old windows deletes (and locks) no one's grants. */
const WARM_UP_WINDOW_SECONDS = 2 ** 31;

/** Every statement of a browser's form post that gets a VM, as `requestVm` runs them: the browser's VM and place in line, the address's grant, the assignment, a grant given back. */
export const ASSIGNMENT_WARM_UP: WarmUp[] = [
  { statement: SELECT_BROWSER_HOLDING, params: { retryToken: generateSecret(), email: 'warm-up@example.invalid' } },
  { statement: SELECT_BROWSER_PLACE, params: { token: generateSecret(), turnSeconds: DEFAULT_LINE_POLICY.turnSeconds } },
  { statement: TAKE_ADDRESS_GRANT, params: { address: WARM_UP_ADDRESS, windowSeconds: WARM_UP_WINDOW_SECONDS, limit: 1 } },
  {
    statement: ASSIGN_VM,
    params: { email: 'warm-up@example.invalid', crdCommand: '', pin: generatePin(), presentedRetryToken: null, retryToken: generateSecret(), mayAssign: true, doubleSubmitSeconds: DOUBLE_SUBMIT_SECONDS, turnSeconds: DEFAULT_LINE_POLICY.turnSeconds },
  },
  { statement: GIVE_BACK_ADDRESS_GRANT, params: { address: WARM_UP_ADDRESS, windowStart: '2000-01-01T00:00:00Z' } },
];

/**
 * A participant's request: validate, then one atomic statement that returns the VM
 * this email already has or assigns a free one with a fresh PIN.
 */
export async function requestVm(sql: Sql, input: VmRequestInput, client: RequestClient = {}): Promise<VmRequestResult> {
  const valid = validateVmRequest(input);
  if (!valid.ok) return { kind: 'invalid', errors: valid.errors, ...(valid.emailSuggestion ? { emailSuggestion: valid.emailSuggestion } : {}) };

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
  if (grant && !grant.granted && result.kind === 'no_vm_free') return { kind: 'address_limited', retryAfterSeconds: grant.retryAfterSeconds };
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
async function submitFromLine(sql: Sql, place: { ticket: string; email: string }, valid: { email: string; command: CrdCommand }, policy: LinePolicy): Promise<VmRequestResult> {
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
