/**
 * The one vocabulary of VM states: each status's SQL predicate and the words an instructor reads.
 * The database computes a VM's status once (VM_STATUS_SQL, the first predicate that holds, in this
 * order); the dashboard's rows, tiles, summary, filter, CSV and JSON, and the form's free count all
 * read that one value, so a count and a row can never disagree.
 */
import { PROBE_EMAIL, SETUP_FAILURE_PREFIX } from '../contract/wire';

/** Stopped (or being started again) by the warm pool: silent on purpose, never stale, unhealthy or repaired. */
export const POWERED_DOWN = `(stopped_at IS NOT NULL OR started_at IS NOT NULL)`;

/** Heartbeats stopped, and not because the warm pool stopped the VM. */
export const STALE = `(coalesce(health_reported_at < now() - make_interval(secs => CAST(:staleSeconds AS float8)), false) AND NOT ${POWERED_DOWN})`;

/** A VM that can be handed out: waiting, nobody's, polling, not failed. The one definition of "free". */
export const FREE_VM = `state = 'waiting' AND email IS NULL AND alive_until > now() AND failed_at IS NULL`;

/** What in start-host's failure means Google refused the participant's command (spent, expired, mistyped), not the VM. */
export const COMMAND_REJECTED_PATTERN = 'invalid_grant|already been used|expired|code is probably spent|oauth';

/** A first boot (or a reboot) that takes longer than this is overdue: the VM is a problem, no longer "booting". */
export const BOOT_EXPECTED_MINUTES = 20;
/** A reset takes a minute or two; one still running after this is stuck. */
export const RESET_EXPECTED_MINUTES = 10;

/** How often start-host may fail on one VM for a reason other than the command before its participant is told to ask the instructor. */
export const START_FAILURES_BEFORE_HELP = 2;

interface StatusDefinition {
  /** Holds for this status when no earlier status's predicate does. */
  when: string;
  /** What an instructor reads in the State column and on the tiles. */
  label: string;
  /** Counted as a problem: red, and sorted first. */
  problem: boolean;
  /** What it means and what to do next, in the instructor's words. */
  next: string;
}

/** The statuses in the order their predicates are tried; problems first within the dashboard's sort. */
const DEFINITIONS = {
  free: { when: FREE_VM, label: 'free', problem: false, next: 'Waits for the next participant.' },
  replacing: {
    when: 'replacement_requested_at IS NOT NULL',
    label: 'replacing',
    problem: false,
    next: 'A spare VM is starting and takes over this name, usually within 10 minutes; nothing to do.',
  },
  'setup-failed': {
    when: `failed_at IS NOT NULL AND starts_with(coalesce(failure, ''), '${SETUP_FAILURE_PREFIX}')`,
    label: 'setup failed',
    problem: true,
    next: 'The workshop’s setup script failed: read its log, fix the script, then Re-run setup.',
  },
  failed: {
    when: 'failed_at IS NOT NULL',
    label: 'failed',
    problem: true,
    next: 'Out of the pool. Move its participant to a working VM; without one, a spare replaces it, or Reset it to try it again.',
  },
  stopped: {
    when: 'stopped_at IS NOT NULL',
    label: 'stopped',
    problem: false,
    next: 'Stopped by the warm pool to save money; started again when participants need it.',
  },
  starting: {
    when: 'started_at IS NOT NULL',
    label: 'starting',
    problem: false,
    next: 'The warm pool is starting it; free within a few minutes.',
  },
  'reset-stuck': {
    when: `state = 'resetting' AND reset_requested_at < now() - interval '${RESET_EXPECTED_MINUTES} minutes'`,
    label: 'reset stuck',
    problem: true,
    next: `Its reset has not finished after ${RESET_EXPECTED_MINUTES} minutes: read its log, then Reset it again.`,
  },
  resetting: {
    when: `state = 'resetting'`,
    label: 'resetting',
    problem: false,
    next: 'Its agent is wiping it for the next participant; free again in a minute or two.',
  },
  checking: {
    when: `email = '${PROBE_EMAIL}' AND state IN ('assigned', 'delivered', 'error')`,
    label: 'go / no-go probe',
    problem: false,
    next: 'The deployment check’s probe participant is using it for a few seconds; it is reset and free again when the check ends.',
  },
  'participant-stuck': {
    when: `state = 'error' AND moved_from IS NULL AND start_failures >= ${START_FAILURES_BEFORE_HELP}`,
    label: 'participant stuck',
    problem: true,
    next: 'Chrome Remote Desktop failed on this VM more than once, not because of the command: Move the participant to another VM.',
  },
  'command-rejected': {
    when: `state = 'error' AND moved_from IS NULL AND coalesce(error, '') ~* '${COMMAND_REJECTED_PATTERN}'`,
    label: 'command rejected',
    problem: false,
    next: 'Google refused the participant’s command (spent or expired); their page asks them for a new one.',
  },
  'start-failed': {
    when: `state = 'error' AND moved_from IS NULL`,
    label: 'connection failed',
    problem: true,
    next: 'Chrome Remote Desktop could not start with the participant’s command; their page asks them for a new one. If it fails again, Move them.',
  },
  'waiting-for-command': {
    when: `state = 'error'`,
    label: 'waiting for command',
    problem: false,
    next: 'The participant was moved here; their page asks them for a new command.',
  },
  stale: {
    when: STALE,
    label: 'stale',
    problem: true,
    next: 'It stopped reporting: LabLink reboots it by itself; Move its participant if they cannot wait.',
  },
  unhealthy: {
    when: 'unhealthy_since IS NOT NULL',
    label: 'unhealthy',
    problem: true,
    next: 'Its GPU or Chrome Remote Desktop failed a check: LabLink reboots it by itself; Move its participant if they cannot wait.',
  },
  booting: {
    when: `state = 'waiting' AND greatest(registered_at, last_reboot_at) > now() - interval '${BOOT_EXPECTED_MINUTES} minutes'`,
    label: 'booting',
    problem: false,
    next: 'Installing the desktop and running the workshop’s setup; free when done.',
  },
  'not-polling': {
    when: `state = 'waiting'`,
    label: 'not polling',
    problem: true,
    next: `Not ready after ${BOOT_EXPECTED_MINUTES} minutes, or silent since: read its log; Re-run setup if the setup is at fault.`,
  },
  assigned: {
    when: `state = 'assigned'`,
    label: 'assigned',
    problem: false,
    next: 'Its agent picks up the participant’s command within seconds.',
  },
  configuring: {
    when: `state = 'delivered'`,
    label: 'configuring',
    problem: false,
    next: 'Chrome Remote Desktop is being set up with the participant’s command.',
  },
  ready: { when: `state = 'configured'`, label: 'ready', problem: false, next: 'The participant can connect.' },
} satisfies Record<string, StatusDefinition>;

export type VmStatus = keyof typeof DEFINITIONS;

export const VM_STATUSES = Object.keys(DEFINITIONS) as VmStatus[];

export function statusDefinition(status: VmStatus): StatusDefinition {
  return DEFINITIONS[status];
}

/** Every status's label, for a reader who sees only the words (the tiles' order is problems first, then the life cycle). */
export function statusLabel(status: VmStatus): string {
  return DEFINITIONS[status].label;
}

export function isProblem(status: VmStatus): boolean {
  return DEFINITIONS[status].problem;
}

/**
 * The statuses of VMs on their way to being free, and when each should be: the time it set off
 * (a SQL expression) plus how long that usually takes. A stopped VM is started when needed.
 */
const ON_ITS_WAY: Partial<Record<VmStatus, { since: string; minutes: number }>> = {
  booting: { since: 'greatest(registered_at, last_reboot_at)', minutes: 10 },
  starting: { since: 'started_at', minutes: 3 },
  stopped: { since: 'now()', minutes: 3 },
  resetting: { since: 'reset_requested_at', minutes: 2 },
  replacing: { since: 'replacement_requested_at', minutes: 10 },
};

/** When a VM on its way should be free, as a SQL expression over `vms` with its `status`; null for other VMs. */
export const EXPECTED_FREE_AT_SQL = `CASE status ${Object.entries(ON_ITS_WAY)
  .map(([status, way]) => `WHEN '${status}' THEN ${way.since} + interval '${way.minutes} minutes'`)
  .join(' ')} END`;

/** The status of each row, as a SQL expression over `vms` (needs :staleSeconds). */
export const VM_STATUS_SQL = `CASE ${VM_STATUSES.map((status) => `WHEN ${DEFINITIONS[status].when} THEN '${status}'`).join(' ')} ELSE state END`;

/** Whether start-host's failure means the participant's command was refused, not the VM. */
export function commandRejected(error: string | null): boolean {
  return error !== null && new RegExp(COMMAND_REJECTED_PATTERN, 'i').test(error);
}

/**
 * Keeps the links of the VMs in the CTE `source` working after they are taken back: each
 * participant's page (by the assignment id, or the one before a move) says the VM was taken back.
 */
export const keepReleasedLinks = (source: string) => `INSERT INTO released_assignments (assignment_id, hostname)
  SELECT id, ${source}.hostname FROM ${source} CROSS JOIN LATERAL unnest(ARRAY[${source}.assignment_id, ${source}.previous_assignment_id]) AS id
  WHERE id IS NOT NULL
  ON CONFLICT (assignment_id) DO NOTHING`;

/**
 * What the form tells a participant: how many VMs are free, how many are on their way, and in how
 * many seconds the first of those should be free (by the vocabulary's statuses, as the dashboard counts them).
 */
export const ON_THE_WAY = `fleet AS (
  SELECT ${VM_STATUS_SQL} AS status, registered_at, last_reboot_at, started_at, reset_requested_at, replacement_requested_at
  FROM vms WHERE state <> 'retired'
), due AS (
  SELECT status, ${EXPECTED_FREE_AT_SQL} AS expected_free_at FROM fleet
)`;

/**
 * A place in the waiting line that still counts: not served yet, and not a turn that ran out
 * (:turnSeconds after the participant was called to paste a fresh command).
 */
export const IN_LINE = `(served_at IS NULL AND (called_at IS NULL OR called_at > now() - make_interval(secs => CAST(:turnSeconds AS float8))))`;
