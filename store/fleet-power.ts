import { PoolVm } from '../core/warm-pool';
import { Sql } from './sql';
import { FREE_VM, POWERED_DOWN } from './vm-status';

/**
 * A VM has a participant (or is being cleaned after one): CloudFormation must not delete it. By
 * the email, not a list of states: a participant in `error` (a failed start-host waiting for their
 * retry, a moved participant's new VM before their new command) is still on the VM.
 */
const HAS_PARTICIPANT = `(email IS NOT NULL OR state = 'resetting')`;

/** VMs whose termination protection is not what their participant needs. */
const SELECT_PROTECTION_CHANGES = `
SELECT hostname, instance_id, ${HAS_PARTICIPANT} AS protect FROM vms
WHERE instance_id IS NOT NULL AND state <> 'retired' AND termination_protected <> (${HAS_PARTICIPANT})`;

/** Termination protection to switch on (a participant arrived) or off (the VM is free again). */
export async function protectionChanges(sql: Sql): Promise<{ hostname: string; instance_id: string; protect: boolean }[]> {
  return sql.query(SELECT_PROTECTION_CHANGES);
}

/**
 * Forgets that VMs with a participant are protected, so the next round protects them again: EC2's
 * attribute may have been lifted behind the allocator's back (the expiry function at expiresAt,
 * `npm run teardown`, an admin), and a later deploy can bring the workshop back.
 */
const FORGET_TERMINATION_PROTECTION = `
UPDATE vms SET termination_protected = false WHERE termination_protected AND ${HAS_PARTICIPANT}`;

/** Makes the next protectionChanges list every VM with a participant again (see FORGET_TERMINATION_PROTECTION). */
export async function forgetProtection(sql: Sql): Promise<void> {
  await sql.query(FORGET_TERMINATION_PROTECTION);
}

const SET_TERMINATION_PROTECTED = `
UPDATE vms SET termination_protected = CAST(:protect AS boolean) WHERE hostname = :hostname`;

export async function recordProtection(sql: Sql, hostname: string, protect: boolean): Promise<void> {
  await sql.query(SET_TERMINATION_PROTECTED, { hostname, protect });
}

/**
 * What the warm-pool controller decides on; a VM neither free, busy, starting nor stopped (booting, dead) is left out,
 * and so are spares: their Auto Scaling group would replace a stopped one as unhealthy.
 */
const SELECT_WARM_POOL_VMS = `
SELECT hostname, CASE
    WHEN stopped_at IS NOT NULL THEN 'stopped'
    -- A start that never led to a poll (EC2 refused it, the VM broke) is tried again.
    WHEN started_at > now() - interval '10 minutes' THEN 'starting'
    WHEN started_at IS NOT NULL THEN 'stopped'
    WHEN ${HAS_PARTICIPANT} THEN 'busy'
    WHEN ${FREE_VM} THEN 'free'
  END AS state
FROM vms WHERE instance_id IS NOT NULL AND state <> 'retired' AND NOT spare`;

/** The fleet as the warm-pool controller sees it; `freeSinceMs` comes from the caller, who watches VMs become free. */
export async function warmPoolVms(sql: Sql): Promise<{ hostname: string; state: PoolVm['state'] }[]> {
  const rows = await sql.query<{ hostname: string; state: PoolVm['state'] | null }>(SELECT_WARM_POOL_VMS);
  return rows.filter((row): row is { hostname: string; state: PoolVm['state'] } => row.state !== null);
}

/** Takes free VMs out of the pool before they are stopped, so none is handed out while it stops. */
export const CLAIM_STOPS = `
UPDATE vms SET stopped_at = now(), alive_until = least(alive_until, now())
WHERE hostname = ANY(CAST(:hostnames AS text[])) AND ${FREE_VM} AND stopped_at IS NULL
RETURNING hostname, instance_id`;

/** Marks free VMs as stopping, atomically out of the pool; returns those still free, to stop. */
export async function claimStops(sql: Sql, hostnames: string[]): Promise<{ hostname: string; instance_id: string }[]> {
  return hostnames.length === 0 ? [] : sql.query(CLAIM_STOPS, { hostnames });
}

const CLAIM_STARTS = `
UPDATE vms SET stopped_at = NULL, started_at = now()
WHERE hostname = ANY(CAST(:hostnames AS text[])) AND (stopped_at IS NOT NULL OR started_at <= now() - interval '10 minutes')
RETURNING hostname, instance_id`;

/** Marks stopped VMs as starting; returns those still stopped, to start. */
export async function claimStarts(sql: Sql, hostnames: string[]): Promise<{ hostname: string; instance_id: string }[]> {
  return hostnames.length === 0 ? [] : sql.query(CLAIM_STARTS, { hostnames });
}

/** The named VMs' instances that spares replaced (or are about to): they stay stopped. */
const SELECT_REPLACED_INSTANCES = `
SELECT hostname, replaced_instance_id AS instance_id FROM vms WHERE replaced_instance_id IS NOT NULL AND state <> 'retired'
UNION ALL
SELECT hostname, instance_id FROM vms WHERE replacement_requested_at IS NOT NULL AND NOT spare AND state <> 'retired'`;

export async function replacedInstances(sql: Sql): Promise<{ hostname: string; instance_id: string }[]> {
  return sql.query(SELECT_REPLACED_INSTANCES);
}

/** A spare boots in 5 to 10 minutes: a replacement older than this is no longer promised to participants. */
const REPLACEMENT_EXPECTED_MINUTES = 20;

/** VMs stopped by the warm pool, starting again, or waiting for a spare: a participant who finds none free can get one soon. */
const COUNT_WARMING_VMS = `
SELECT count(*)::int AS count FROM vms
WHERE state <> 'retired' AND ((${POWERED_DOWN} AND failed_at IS NULL) OR replacement_requested_at > now() - interval '${REPLACEMENT_EXPECTED_MINUTES} minutes')`;

export async function countWarmingVms(sql: Sql): Promise<number> {
  const [row] = await sql.query<{ count: number }>(COUNT_WARMING_VMS);
  return row.count;
}
