import { SETUP_FAILURE_PREFIX } from '../contract/wire';
import { Sql, UniqueViolationError } from './sql';

/** A failed VM whose instance is to leave the fleet, so a spare can take over its name. */
export interface ReplacementRequest {
  hostname: string;
  instance_id: string;
  /** The failed instance is itself a spare (its group replaces it), not one of the named VMs. */
  spare: boolean;
  failure: string | null;
}

/** The fleet's names: `<prefix>-1` to `<prefix>-<vmCount>`. */
export interface FleetNames {
  prefix: string;
  vmCount: number;
}

/**
 * Spares that hold a name the fleet no longer has (`<prefix>-<n>` with n above :vmCount, after
 * `vmCount` shrank) and nobody is on, and such names still waiting for a spare: retired in one
 * statement, so none is handed out meanwhile. A retired row keeps `spare` until its instance is
 * ended (SELECT_SPARES_TO_END), so a failed call is tried again.
 */
const RETIRE_NAMES_BEYOND = `
WITH beyond AS (
  SELECT hostname, instance_id, spare FROM vms
  WHERE state <> 'retired' AND email IS NULL AND (spare OR replacement_requested_at IS NOT NULL)
    AND starts_with(hostname, CAST(:prefix AS text) || '-')
    AND CASE WHEN substring(hostname FROM char_length(CAST(:prefix AS text)) + 2) ~ '^[0-9]{1,6}$'
      THEN CAST(substring(hostname FROM char_length(CAST(:prefix AS text)) + 2) AS integer) > :vmCount ELSE false END
  FOR UPDATE
)
UPDATE vms SET state = 'retired', replacement_requested_at = NULL, unhealthy_since = NULL,
  health_reported_at = NULL, alive_until = least(vms.alive_until, now())
FROM beyond WHERE vms.hostname = beyond.hostname
RETURNING vms.hostname, beyond.instance_id, beyond.spare`;

/** Takes names beyond the fleet's size out (see RETIRE_NAMES_BEYOND). */
export async function retireNamesBeyond(
  sql: Sql,
  names: FleetNames,
): Promise<{ hostname: string; instance_id: string | null; spare: boolean }[]> {
  return sql.query(RETIRE_NAMES_BEYOND, { prefix: names.prefix, vmCount: names.vmCount });
}

/** Retired names whose spare instance is still to be ended. */
const SELECT_SPARES_TO_END = `
SELECT hostname, instance_id FROM vms WHERE state = 'retired' AND spare AND instance_id IS NOT NULL`;

export async function sparesToEnd(sql: Sql): Promise<{ hostname: string; instance_id: string }[]> {
  return sql.query(SELECT_SPARES_TO_END);
}

const MARK_SPARE_ENDED = `
UPDATE vms SET spare = false WHERE hostname = :hostname AND state = 'retired' AND instance_id = :instanceId`;

export async function markSpareEnded(sql: Sql, hostname: string, instanceId: string): Promise<void> {
  await sql.query(MARK_SPARE_ENDED, { hostname, instanceId });
}

/**
 * Failed VMs nobody is on get a spare (one allocator each, SKIP LOCKED), at most :maxReplacements
 * times per name. A failed setup is left to the admin: a spare would run the same script. While
 * the warm pool holds stopped VMs, starting one of those is the cheaper replacement.
 */
const REQUEST_REPLACEMENTS = `
UPDATE vms SET replacement_requested_at = now(), replacement_count = replacement_count + 1, alive_until = least(alive_until, now())
WHERE hostname IN (
  SELECT hostname FROM vms
  WHERE failed_at IS NOT NULL AND email IS NULL AND state <> 'retired' AND instance_id IS NOT NULL
    AND replacement_requested_at IS NULL AND replacement_count < :maxReplacements
    AND NOT starts_with(coalesce(failure, ''), '${SETUP_FAILURE_PREFIX}')
    AND NOT EXISTS (SELECT 1 FROM vms stopped WHERE stopped.stopped_at IS NOT NULL AND stopped.failed_at IS NULL AND stopped.state <> 'retired')
  FOR UPDATE SKIP LOCKED)
RETURNING hostname, instance_id, spare, failure`;

/** Claims the failed VMs nobody is on for replacement (see REQUEST_REPLACEMENTS). */
export async function requestReplacements(sql: Sql, maxReplacements: number): Promise<ReplacementRequest[]> {
  return sql.query<ReplacementRequest>(REQUEST_REPLACEMENTS, { maxReplacements });
}

/**
 * A spare's instance vanished (its group replaced it as unhealthy, which starts a successor):
 * the name waits for that successor, with no further request to the group.
 */
const MARK_SPARE_GONE = `
UPDATE vms SET failed_at = coalesce(failed_at, now()), failure = 'Its spare instance is gone',
  replacement_requested_at = coalesce(replacement_requested_at, now()), alive_until = least(alive_until, now())
WHERE hostname = :hostname AND spare`;

export async function markSpareGone(sql: Sql, hostname: string): Promise<void> {
  await sql.query(MARK_SPARE_GONE, { hostname });
}

/** EC2 refused to take the failed instance out of the fleet: the VM stays failed and is tried again. */
const CANCEL_REPLACEMENT = `
UPDATE vms SET replacement_requested_at = NULL, replacement_count = replacement_count - 1
WHERE hostname = :hostname AND replacement_requested_at IS NOT NULL`;

export async function cancelReplacement(sql: Sql, hostname: string): Promise<void> {
  await sql.query(CANCEL_REPLACEMENT, { hostname });
}

/** How many spares the group should run: those holding a name, and one per VM waiting for one. */
const COUNT_SPARES_WANTED = `
SELECT count(*)::int AS count FROM vms WHERE state <> 'retired' AND (spare OR replacement_requested_at IS NOT NULL)`;

/** How many instances the spares group should run. */
export async function countSparesWanted(sql: Sql): Promise<number> {
  const [row] = await sql.query<{ count: number }>(COUNT_SPARES_WANTED);
  return row.count;
}

/**
 * A spare instance takes the name of the VM that has waited longest for one, starting afresh:
 * waiting, no failure, no health history. Asked again, it gets the name it already has.
 */
export const CLAIM_SPARE_NAME = `
WITH mine AS (
  SELECT hostname FROM vms WHERE instance_id = :instanceId AND spare AND state <> 'retired'
), picked AS (
  SELECT hostname FROM vms
  WHERE replacement_requested_at IS NOT NULL AND state <> 'retired' AND NOT EXISTS (SELECT 1 FROM mine)
  ORDER BY replacement_requested_at, hostname LIMIT 1 FOR UPDATE SKIP LOCKED
), claimed AS (
  -- The name's first instance (CloudFormation's) is remembered through later replacements: it is the one that stays, stopped.
  UPDATE vms SET replaced_instance_id = CASE WHEN vms.spare THEN vms.replaced_instance_id ELSE vms.instance_id END,
    instance_id = :instanceId, spare = true, replacement_requested_at = NULL,
    state = 'waiting', registered_at = now(), alive_until = now(), error = NULL, failed_at = NULL, failure = NULL,
    -- Heard from now: a spare whose agent never starts goes stale and is repaired like any VM.
    unhealthy_since = NULL, reboot_count = 0, last_reboot_at = NULL, health_reported_at = now(), last_seen = now(), boot_id = NULL, uptime_seconds = NULL,
    crd_running = NULL, disk_free_mb = NULL, gpu_status = NULL, gpu_detail = NULL, in_use = NULL, reset_requested_at = NULL,
    setup_rerun_requested_at = NULL, termination_protected = false, stopped_at = NULL, started_at = NULL,
    step = 'claim-name', step_at = now()
  FROM picked WHERE vms.hostname = picked.hostname
  RETURNING vms.hostname
)
SELECT hostname FROM mine UNION ALL SELECT hostname FROM claimed`;

/** The name this spare instance takes (or already holds); undefined when no VM waits for a spare. */
export async function claimSpareName(sql: Sql, instanceId: string): Promise<string | undefined> {
  try {
    const [row] = await sql.query<{ hostname: string }>(CLAIM_SPARE_NAME, { instanceId });
    return row?.hostname;
  } catch (error) {
    // An overlapping claim by the same instance won: the name it took is the answer.
    if (error instanceof UniqueViolationError) return spareName(sql, instanceId);
    throw error;
  }
}

/** The name a spare instance holds, if any. */
const SELECT_SPARE_NAME = `
SELECT hostname FROM vms WHERE instance_id = :instanceId AND spare AND state <> 'retired'`;

export async function spareName(sql: Sql, instanceId: string): Promise<string | undefined> {
  const [row] = await sql.query<{ hostname: string }>(SELECT_SPARE_NAME, { instanceId });
  return row?.hostname;
}

/** Which names spares hold, for the identity check. */
export interface SpareRegistry {
  /** The name a spare instance claimed. */
  nameOf(instanceId: string): Promise<string | undefined>;
  /** The spare instance that holds a name now. */
  holderOf(hostname: string): Promise<string | undefined>;
}

/** The spare instance that holds a name, if any. */
const SELECT_SPARE_HOLDER = `
SELECT instance_id FROM vms WHERE hostname = :hostname AND spare AND state <> 'retired'`;

export function spareRegistry(sql: Sql): SpareRegistry {
  return {
    nameOf: (instanceId) => spareName(sql, instanceId),
    holderOf: async (hostname) => (await sql.query<{ instance_id: string }>(SELECT_SPARE_HOLDER, { hostname }))[0]?.instance_id,
  };
}
