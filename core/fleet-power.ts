import { PoolVm } from './warm-pool';
import { Sql } from './sql';
import * as statements from './statements';

/** Termination protection to switch on (a participant arrived) or off (the VM is free again). */
export async function protectionChanges(sql: Sql): Promise<{ hostname: string; instance_id: string; protect: boolean }[]> {
  return sql.query(statements.SELECT_PROTECTION_CHANGES);
}

/** Makes the next protectionChanges list every VM with a participant again (see FORGET_TERMINATION_PROTECTION). */
export async function forgetProtection(sql: Sql): Promise<void> {
  await sql.query(statements.FORGET_TERMINATION_PROTECTION);
}

export async function recordProtection(sql: Sql, hostname: string, protect: boolean): Promise<void> {
  await sql.query(statements.SET_TERMINATION_PROTECTED, { hostname, protect });
}

/** The fleet as the warm-pool controller sees it; `freeSinceMs` comes from the caller, who watches VMs become free. */
export async function warmPoolVms(sql: Sql): Promise<{ hostname: string; state: PoolVm['state'] }[]> {
  const rows = await sql.query<{ hostname: string; state: PoolVm['state'] | null }>(statements.SELECT_WARM_POOL_VMS);
  return rows.filter((row): row is { hostname: string; state: PoolVm['state'] } => row.state !== null);
}

/** Marks free VMs as stopping, atomically out of the pool; returns those still free, to stop. */
export async function claimStops(sql: Sql, hostnames: string[]): Promise<{ hostname: string; instance_id: string }[]> {
  return hostnames.length === 0 ? [] : sql.query(statements.CLAIM_STOPS, { hostnames });
}

/** Marks stopped VMs as starting; returns those still stopped, to start. */
export async function claimStarts(sql: Sql, hostnames: string[]): Promise<{ hostname: string; instance_id: string }[]> {
  return hostnames.length === 0 ? [] : sql.query(statements.CLAIM_STARTS, { hostnames });
}

export async function replacedInstances(sql: Sql): Promise<{ hostname: string; instance_id: string }[]> {
  return sql.query(statements.SELECT_REPLACED_INSTANCES);
}

export async function countWarmingVms(sql: Sql): Promise<number> {
  const [row] = await sql.query<{ count: number }>(statements.COUNT_WARMING_VMS);
  return row.count;
}
