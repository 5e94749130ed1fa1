import { HealthReport } from '../contract/health-report';
import { generatePin } from '../core/pin';
import { markConnected } from './idle-deadlines';
import { CANNOT_RESET } from './reset';
import { Sql } from './sql';
import { FREE_VM, keepReleasedLinks, POWERED_DOWN, STALE } from './vm-status';

/** A heartbeat from another boot than the last one known. */
const NEW_BOOT = `(boot_id IS NOT NULL AND CAST(:bootId AS text) IS NOT NULL AND boot_id <> CAST(:bootId AS text))`;

/**
 * An agent's report; a null field was not part of this report and keeps its value. A new boot
 * of a VM that was out of the pool only because it cannot reset itself brings it back (`rejoined`).
 */
export const RECORD_HEALTH = `
WITH before AS (
  SELECT hostname, ${NEW_BOOT} AND failure = '${CANNOT_RESET}' AS rejoined FROM vms WHERE hostname = :hostname FOR UPDATE
)
UPDATE vms SET
  failed_at = CASE WHEN before.rejoined THEN NULL ELSE failed_at END,
  failure = CASE WHEN before.rejoined THEN NULL ELSE failure END,
  health_reported_at = CASE WHEN CAST(:heartbeat AS boolean) THEN now() ELSE health_reported_at END,
  boot_id = coalesce(CAST(:bootId AS text), boot_id),
  uptime_seconds = coalesce(CAST(:uptimeSeconds AS integer), uptime_seconds),
  crd_running = coalesce(CAST(:crdRunning AS boolean), crd_running),
  disk_free_mb = coalesce(CAST(:diskFreeMb AS integer), disk_free_mb),
  gpu_status = coalesce(CAST(:gpuStatus AS text), gpu_status),
  gpu_detail = CASE WHEN CAST(:gpuStatus AS text) IS NULL THEN gpu_detail ELSE CAST(:gpuDetail AS text) END,
  in_use = coalesce(CAST(:inUse AS boolean), in_use)
FROM before WHERE vms.hostname = before.hostname
RETURNING vms.hostname, before.rejoined`;

/**
 * Stores a report; undefined when no VM has that name. `rejoined`: a new boot brought back a VM
 * that was out of the pool only because it cannot reset itself.
 */
export async function recordHealth(sql: Sql, hostname: string, report: HealthReport): Promise<{ rejoined: boolean } | undefined> {
  const [row] = await sql.query<{ rejoined: boolean }>(RECORD_HEALTH, {
    hostname,
    heartbeat: report.heartbeat !== undefined,
    bootId: report.heartbeat?.bootId ?? null,
    uptimeSeconds: report.heartbeat?.uptimeSeconds === undefined ? null : Math.round(report.heartbeat.uptimeSeconds),
    crdRunning: report.heartbeat?.crdRunning ?? null,
    diskFreeMb: report.heartbeat?.diskFreeMb === undefined ? null : Math.round(report.heartbeat.diskFreeMb),
    gpuStatus: report.gpu?.status ?? null,
    gpuDetail: report.gpu?.detail ?? null,
    inUse: report.inUse ?? null,
  });
  if (row && report.inUse === true) await markConnected(sql, hostname);
  return row && { rejoined: row.rejoined };
}

export interface RepairPolicy {
  /** No heartbeat for this long: stale. */
  staleSeconds: number;
  /** Unhealthy for this long: reboot (or, after the last reboot, fail). */
  repairAfterSeconds: number;
  maxReboots: number;
  /** At least this long between two reboots of one VM. */
  cooldownSeconds: number;
}

export const DEFAULT_REPAIR_POLICY: RepairPolicy = { staleSeconds: 90, repairAfterSeconds: 300, maxReboots: 2, cooldownSeconds: 600 };

/**
 * Whether a VM is unhealthy now: its heartbeats stopped, its GPU fails, or CRD's host is gone on
 * a configured VM. A client that never sends heartbeats (LabLink's own) is never judged stale.
 */
const UNHEALTHY = `(${STALE}
  OR (NOT ${POWERED_DOWN} AND (coalesce(gpu_status = 'failed', false) OR coalesce(state = 'configured' AND crd_running = false, false))))`;

/** Starts or stops each VM's "unhealthy since" clock; run by every allocator, idempotent. */
const TRACK_UNHEALTHY = `
UPDATE vms SET unhealthy_since = CASE WHEN ${UNHEALTHY} THEN coalesce(unhealthy_since, now()) ELSE NULL END,
  -- Healthy for a while since the last reboot: the next bad spell gets its reboots again.
  reboot_count = CASE WHEN NOT ${UNHEALTHY} AND (last_reboot_at IS NULL OR last_reboot_at < now() - make_interval(secs => CAST(:cooldownSeconds AS float8)))
    THEN 0 ELSE reboot_count END
WHERE failed_at IS NULL AND state <> 'retired'
  AND ((unhealthy_since IS NULL) = ${UNHEALTHY} OR (reboot_count > 0 AND NOT ${UNHEALTHY}))
RETURNING hostname, unhealthy_since IS NOT NULL AS unhealthy`;

export async function trackUnhealthy(sql: Sql, policy: RepairPolicy): Promise<{ hostname: string; unhealthy: boolean }[]> {
  return sql.query(TRACK_UNHEALTHY, { staleSeconds: policy.staleSeconds, cooldownSeconds: policy.cooldownSeconds });
}

/** In use, by a report that is still current: a hung VM's last "in use" does not shield it forever. */
const IN_USE_NOW = `coalesce(in_use AND health_reported_at >= now() - make_interval(secs => CAST(:staleSeconds AS float8)), false)`;

/** Claims the VMs due for a reboot (one allocator each, SKIP LOCKED) and counts the reboot. */
const CLAIM_REBOOTS = `
UPDATE vms SET reboot_count = reboot_count + 1, last_reboot_at = now(), unhealthy_since = now()
WHERE hostname IN (
  SELECT hostname FROM vms
  WHERE failed_at IS NULL AND instance_id IS NOT NULL AND NOT ${IN_USE_NOW} AND NOT ${POWERED_DOWN}
    AND unhealthy_since < now() - make_interval(secs => CAST(:repairAfterSeconds AS float8))
    AND reboot_count < :maxReboots
    AND (last_reboot_at IS NULL OR last_reboot_at < now() - make_interval(secs => CAST(:cooldownSeconds AS float8)))
  FOR UPDATE SKIP LOCKED)
RETURNING hostname, instance_id, reboot_count, spare`;

export async function claimReboots(
  sql: Sql,
  policy: RepairPolicy,
): Promise<{ hostname: string; instance_id: string; reboot_count: number; spare: boolean }[]> {
  return sql.query(CLAIM_REBOOTS, {
    staleSeconds: policy.staleSeconds,
    repairAfterSeconds: policy.repairAfterSeconds,
    maxReboots: policy.maxReboots,
    cooldownSeconds: policy.cooldownSeconds,
  });
}

/** Takes VMs that stayed unhealthy after their reboots out of the pool, saying why. */
const MARK_FAILED = `
UPDATE vms SET failed_at = now(), failure = CASE
    WHEN gpu_status = 'failed' THEN 'GPU check failed: ' || coalesce(gpu_detail, 'nvidia-smi did not answer')
    WHEN state = 'configured' AND crd_running = false THEN 'Chrome Remote Desktop host is not running'
    ELSE 'The agent stopped reporting' END
WHERE failed_at IS NULL AND unhealthy_since < now() - make_interval(secs => CAST(:repairAfterSeconds AS float8))
  AND (reboot_count >= :maxReboots OR instance_id IS NULL) AND NOT ${IN_USE_NOW} AND NOT ${POWERED_DOWN}
RETURNING hostname, email, failure`;

export async function markFailed(sql: Sql, policy: RepairPolicy): Promise<{ hostname: string; email: string | null; failure: string }[]> {
  return sql.query(MARK_FAILED, {
    staleSeconds: policy.staleSeconds,
    repairAfterSeconds: policy.repairAfterSeconds,
    maxReboots: policy.maxReboots,
  });
}

export type MoveResult = { kind: 'moved'; hostname: string; email: string } | { kind: 'no_participant' } | { kind: 'no_vm_free' };

/**
 * Moves a VM's participant to a free healthy VM in one statement (the email constraint is
 * checked at its end): the old VM is reset and, unless it was marked failed, returns to the pool
 * by itself when its reset is done; the new one waits for a new command.
 */
const MOVE_PARTICIPANT = `
WITH old AS (
  SELECT hostname, email, assignment_id, retry_token FROM vms WHERE hostname = :hostname AND email IS NOT NULL FOR UPDATE
), picked AS (
  SELECT hostname FROM vms
  WHERE ${FREE_VM} AND hostname <> :hostname
  ORDER BY registered_at, hostname LIMIT 1 FOR UPDATE SKIP LOCKED
), freed AS (
  UPDATE vms SET email = NULL, crd_command = NULL, pin = NULL, assignment_id = NULL, retry_token = NULL, error = NULL,
    moved_from = NULL, previous_assignment_id = NULL, state = 'resetting', reset_requested_at = now(), start_failures = 0
  FROM old, picked WHERE vms.hostname = old.hostname
  RETURNING old.email, old.assignment_id, old.retry_token
)
UPDATE vms SET email = freed.email, pin = :pin, state = 'error', start_failures = 0, assignment_id = gen_random_uuid(), retry_token = freed.retry_token,
  previous_assignment_id = freed.assignment_id, moved_from = :hostname, assigned_at = now(),
  error = 'Your previous VM stopped working and the instructor moved you to this one.'
FROM freed, picked WHERE vms.hostname = picked.hostname
RETURNING vms.hostname, vms.email`;

const SELECT_VM_EMAIL = `SELECT email FROM vms WHERE hostname = :hostname`;

/** Moves the participant of `hostname` to a free healthy VM with a fresh PIN. */
export async function moveParticipant(sql: Sql, hostname: string): Promise<MoveResult> {
  const [row] = await sql.query<{ hostname: string; email: string }>(MOVE_PARTICIPANT, { hostname, pin: generatePin() });
  if (row) return { kind: 'moved', hostname: row.hostname, email: row.email };
  const [vm] = await sql.query<{ email: string | null }>(SELECT_VM_EMAIL, { hostname });
  return vm?.email ? { kind: 'no_vm_free' } : { kind: 'no_participant' };
}

/** A VM whose instance no longer exists (the fleet shrank): out of the lists and the counts, and no one's VM. */
const RETIRE_VM = `
WITH gone AS (
  SELECT hostname, assignment_id, previous_assignment_id FROM vms WHERE hostname = :hostname FOR UPDATE
), kept AS (
  ${keepReleasedLinks('gone')}
)
UPDATE vms SET state = 'retired', unhealthy_since = NULL, email = NULL, crd_command = NULL, pin = NULL,
  assignment_id = NULL, retry_token = NULL, moved_from = NULL, previous_assignment_id = NULL, health_reported_at = NULL,
  replacement_requested_at = NULL, spare = false
FROM gone WHERE vms.hostname = gone.hostname RETURNING vms.hostname`;

export async function retireVm(sql: Sql, hostname: string): Promise<void> {
  await sql.query(RETIRE_VM, { hostname });
}

export interface FleetCounts {
  total: number;
  free: number;
  assigned: number;
  stale: number;
  /** Went silent within the last half hour: a sudden drop, unlike VMs long gone. */
  newly_stale: number;
  unhealthy: number;
  failed: number;
}

/** The fleet at a glance, for metrics and alarms. */
const FLEET_COUNTS = `
SELECT count(*)::int AS total,
  count(*) FILTER (WHERE ${FREE_VM})::int AS free,
  count(*) FILTER (WHERE email IS NOT NULL)::int AS assigned,
  count(*) FILTER (WHERE failed_at IS NULL AND ${STALE})::int AS stale,
  count(*) FILTER (WHERE failed_at IS NULL AND ${STALE}
    AND health_reported_at > now() - make_interval(secs => CAST(:staleSeconds AS float8)) - interval '30 minutes')::int AS newly_stale,
  count(*) FILTER (WHERE unhealthy_since IS NOT NULL AND failed_at IS NULL)::int AS unhealthy,
  count(*) FILTER (WHERE failed_at IS NOT NULL)::int AS failed
FROM vms WHERE state <> 'retired'`;

export async function fleetCounts(sql: Sql, staleSeconds: number): Promise<FleetCounts> {
  const [row] = await sql.query<FleetCounts>(FLEET_COUNTS, { staleSeconds });
  return row;
}
