import { Sql } from './sql';
import * as statements from './statements';

/**
 * A named lease in the database: while several allocator tasks run (a deployment starts the
 * new one before the old one stops), only the holder runs a fleet-wide controller. A holder
 * that dies loses it when it expires.
 */
export async function takeLease(sql: Sql, name: string, holder: string, seconds: number): Promise<boolean> {
  return (await sql.query(statements.TAKE_LEASE, { name, holder, seconds })).length > 0;
}

export async function releaseLease(sql: Sql, name: string, holder: string): Promise<void> {
  await sql.query(statements.RELEASE_LEASE, { name, holder });
}
