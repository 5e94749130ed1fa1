import { Sql } from './sql';
import * as statements from './statements';

export type RerunRequest = { kind: 'requested' } | { kind: 'no_such_vm' } | { kind: 'participant_connected'; email: string | null };

/**
 * Asks a VM's agent to run the workshop's setup again (for a fix made mid-workshop). A VM with
 * a participant, or one reporting being in use, is only asked when the admin confirmed.
 */
export async function requestSetupRerun(sql: Sql, hostname: string, confirmed: boolean): Promise<RerunRequest> {
  const [row] = await sql.query<{ email: string | null; in_use: boolean; requested: boolean }>(statements.REQUEST_SETUP_RERUN, { hostname, confirmed });
  if (!row) return { kind: 'no_such_vm' };
  return row.requested ? { kind: 'requested' } : { kind: 'participant_connected', email: row.email };
}

/** True once for each request: the agent that hears it runs its setup again. */
export async function claimSetupRerun(sql: Sql, hostname: string): Promise<boolean> {
  return (await sql.query(statements.CLAIM_SETUP_RERUN, { hostname })).length > 0;
}
