/**
 * `POST /vm_startup`, a long-poll. `reportsOutcome: true` says the agent will report how start-host
 * ended (`/vm_status`); a VM that does not say so (LabLink's own client) has a delivery
 * treated as final after a bounded time.
 */
export interface VmStartupRequest {
  hostname: string;
  reportsOutcome?: boolean;
}

/** `200` answer to `/vm_startup`: only ever a real assignment. */
export interface VmAssignmentResponse {
  status: 'success';
  pin: string;
  command: string;
  /** Identifies this assignment so the agent never runs start-host twice for it. */
  assignment: string;
}

/**
 * `202` answer to `/vm_startup`: the VM was taken back; the agent wipes the desktop user's CRD
 * host and home, reports to `/vm_reset`, and only then polls for the next participant.
 */
export const RESET_ORDER = { status: 'reset' } as const;

/** `POST /vm_reset`: how the agent's reset ended; a failed one names the step and why. */
export interface VmResetReport {
  hostname: string;
  outcome: 'done' | 'failed';
  message?: string;
}

export type ConfigurationOutcome = 'configured' | 'error';

/** `POST /vm_status`: the agent's report of how start-host ended. */
export interface VmStatusReport {
  hostname: string;
  assignment: string;
  outcome: ConfigurationOutcome;
  /** A short, secret-free reason when the outcome is `error`. */
  message?: string;
}

/** EC2 tag that marks a fleet's instances; its value is the fleet (stack) name. */
export const FLEET_TAG = 'lablink:fleet';
/** EC2 tag (value `true`) on the instances of the fleet's spares group, which take over failed VMs' names. */
export const SPARE_TAG = 'lablink:spare';
/** EC2 tag on a failed VM's instance once a spare took its name: it is no longer part of the fleet. */
export const REPLACED_TAG = 'lablink:replaced';
/** A spare asks for the name of the VM it replaces here, with its identity document. */
export const CLAIM_NAME_PATH = '/vm_name';

export const HOSTNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;
export const ASSIGNMENT_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const MAX_STATUS_MESSAGE_LENGTH = 500;

/** `setup`: the output of the workshop's own setup (repository, container image, setup script, check). */
export type VmLogSource = 'boot' | 'agent' | 'setup';
export const VM_LOG_LEVELS: readonly LogLevel[] = ['info', 'warn', 'error'];
export const VM_LOG_SOURCES: readonly VmLogSource[] = ['boot', 'agent', 'setup'];

/** One line of a VM's boot log (the user-data's output), of its agent's own log, or of its setup. */
export interface VmLogLine {
  /** ISO 8601; for a boot-log line, when the agent read it. */
  at: string;
  level: LogLevel;
  source: VmLogSource;
  /** One line of plain text: no control characters but tab. */
  text: string;
}

/**
 * `POST /vm_logs`, with the same proof of identity as `/vm_startup`: some of a VM's log lines
 * and its current step → `200 {"accepted": n}`. The first batch registers the VM (as not yet
 * polling), so boot logs are kept before the first poll. The allocator keeps the last
 * KEPT_LOG_LINES_PER_VM lines per VM (its first and its newest). A batch with a bad line is refused whole (400), never cut.
 */
export interface VmLogBatch {
  hostname: string;
  /** What the VM is doing now: a boot step (`LABLINK_STEP <name>` in the boot log), `registering`, `waiting`. */
  step?: string;
  /** At most MAX_LOG_LINES_PER_BATCH; may be empty (a batch that only says the step). */
  lines: VmLogLine[];
  /**
   * The workshop's setup failed: a short, secret-free reason (the step and the last lines of
   * output), which takes the VM out of the pool; `null` once a re-run succeeded.
   */
  setupFailure?: string | null;
}

/** How every setup failure's reason begins, so a passing re-run clears only such a failure. */
export const SETUP_FAILURE_PREFIX = 'Setup failed';

/** `200` answer to `/vm_health`: `rerunSetup` once after the admin asked for the setup to run again. */
export interface VmHealthAnswer {
  ok: true;
  rerunSetup?: true;
}

export const MAX_LOG_LINES_PER_BATCH = 100;
export const MAX_LOG_LINE_LENGTH = 2000;
export const KEPT_LOG_LINES_PER_VM = 500;
/**
 * Of those, a VM's first lines (its boot log) are kept however long it then talks: a client that
 * logs a few retry lines every poll would otherwise push them out within hours.
 */
export const KEPT_FIRST_LOG_LINES_PER_VM = 100;
export const STEP_PATTERN = /^[a-z][a-z0-9-]{0,39}$/;
/** How a boot script announces a step: a line ending in `LABLINK_STEP <name>` (a timestamp may precede it). */
export const STEP_LINE = /(?:^|\s)LABLINK_STEP ([a-z][a-z0-9-]{0,39})\s*$/;
/** What a stored line may not hold: PostgreSQL text cannot hold NUL, and the rest garble a page or a terminal. */
export const LOG_CONTROL_CHARACTERS = /[\u0000-\u0008\u000a-\u001f\u007f]/g;

/**
 * Marks the go / no-go probe's code (core/go-no-go.ts). It has Google's shape, so the form takes
 * it, but Google issued no such code and refuses it; the agent logs that refusal as expected, and
 * local mode's stand-in start-host refuses codes with this marker the way Google does.
 */
export const PROBE_CODE_MARKER = 'LabLinkGoNoGoProbe';
/** `.invalid` can never be anyone's address (RFC 2606): the probe is never a real participant. */
export const PROBE_EMAIL = 'go-no-go-probe@lablink.invalid';

export type LogLevel = 'info' | 'warn' | 'error';
