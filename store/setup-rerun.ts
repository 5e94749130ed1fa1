import { Sql } from './sql';

export type RerunRequest = { kind: 'requested' } | { kind: 'no_such_vm' } | { kind: 'participant_connected'; email: string | null };

/**
 * The admin asks a VM to run its setup again; refused (requested false) while it has a
 * participant or reports being in use, unless :confirmed.
 */
const REQUEST_SETUP_RERUN = `
WITH vm AS (
  SELECT hostname, email, coalesce(in_use, false) AS in_use FROM vms WHERE hostname = :hostname AND state <> 'retired' FOR UPDATE
), requested AS (
  UPDATE vms SET setup_rerun_requested_at = now() FROM vm
  WHERE vms.hostname = vm.hostname AND (CAST(:confirmed AS boolean) OR (vm.email IS NULL AND NOT vm.in_use))
  RETURNING vms.hostname
)
SELECT vm.email, vm.in_use, EXISTS (SELECT 1 FROM requested) AS requested FROM vm`;

/**
 * Asks a VM's agent to run the workshop's setup again (for a fix made mid-workshop). A VM with
 * a participant, or one reporting being in use, is only asked when the admin confirmed.
 */
export async function requestSetupRerun(sql: Sql, hostname: string, confirmed: boolean): Promise<RerunRequest> {
  const [row] = await sql.query<{ email: string | null; in_use: boolean; requested: boolean }>(REQUEST_SETUP_RERUN, {
    hostname,
    confirmed,
  });
  if (!row) return { kind: 'no_such_vm' };
  return row.requested ? { kind: 'requested' } : { kind: 'participant_connected', email: row.email };
}

/** Hands a pending re-run request to the VM's agent, once. */
const CLAIM_SETUP_RERUN = `
UPDATE vms SET setup_rerun_requested_at = NULL
WHERE hostname = :hostname AND setup_rerun_requested_at IS NOT NULL
RETURNING hostname`;

/** True once for each request: the agent that hears it runs its setup again. */
export async function claimSetupRerun(sql: Sql, hostname: string): Promise<boolean> {
  return (await sql.query(CLAIM_SETUP_RERUN, { hostname })).length > 0;
}
