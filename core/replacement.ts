import { Sql, UniqueViolationError } from './sql';
import * as statements from './statements';

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

/** Takes names beyond the fleet's size out (see RETIRE_NAMES_BEYOND). */
export async function retireNamesBeyond(sql: Sql, names: FleetNames): Promise<{ hostname: string; instance_id: string | null; spare: boolean }[]> {
  return sql.query(statements.RETIRE_NAMES_BEYOND, { prefix: names.prefix, vmCount: names.vmCount });
}

export async function sparesToEnd(sql: Sql): Promise<{ hostname: string; instance_id: string }[]> {
  return sql.query(statements.SELECT_SPARES_TO_END);
}

export async function markSpareEnded(sql: Sql, hostname: string, instanceId: string): Promise<void> {
  await sql.query(statements.MARK_SPARE_ENDED, { hostname, instanceId });
}

/** Claims the failed VMs nobody is on for replacement (see REQUEST_REPLACEMENTS). */
export async function requestReplacements(sql: Sql, maxReplacements: number): Promise<ReplacementRequest[]> {
  return sql.query<ReplacementRequest>(statements.REQUEST_REPLACEMENTS, { maxReplacements });
}

export async function markSpareGone(sql: Sql, hostname: string): Promise<void> {
  await sql.query(statements.MARK_SPARE_GONE, { hostname });
}

export async function cancelReplacement(sql: Sql, hostname: string): Promise<void> {
  await sql.query(statements.CANCEL_REPLACEMENT, { hostname });
}

/** How many instances the spares group should run. */
export async function countSparesWanted(sql: Sql): Promise<number> {
  const [row] = await sql.query<{ count: number }>(statements.COUNT_SPARES_WANTED);
  return row.count;
}

/** The name this spare instance takes (or already holds); undefined when no VM waits for a spare. */
export async function claimSpareName(sql: Sql, instanceId: string): Promise<string | undefined> {
  try {
    const [row] = await sql.query<{ hostname: string }>(statements.CLAIM_SPARE_NAME, { instanceId });
    return row?.hostname;
  } catch (error) {
    // An overlapping claim by the same instance won: the name it took is the answer.
    if (error instanceof UniqueViolationError) return spareName(sql, instanceId);
    throw error;
  }
}

export async function spareName(sql: Sql, instanceId: string): Promise<string | undefined> {
  const [row] = await sql.query<{ hostname: string }>(statements.SELECT_SPARE_NAME, { instanceId });
  return row?.hostname;
}

/** Which names spares hold, for the identity check. */
export interface SpareRegistry {
  /** The name a spare instance claimed. */
  nameOf(instanceId: string): Promise<string | undefined>;
  /** The spare instance that holds a name now. */
  holderOf(hostname: string): Promise<string | undefined>;
}

export function spareRegistry(sql: Sql): SpareRegistry {
  return {
    nameOf: (instanceId) => spareName(sql, instanceId),
    holderOf: async (hostname) => (await sql.query<{ instance_id: string }>(statements.SELECT_SPARE_HOLDER, { hostname }))[0]?.instance_id,
  };
}
