import pg from 'pg';
import { APPLICATION_NAME, PgConnection, createPgPool } from '../store/pg-sql';

/**
 * The allocator's own small pool. Its writes (a poll seen, a delivery marked, an outcome or a
 * health report stored) may skip waiting for the WAL flush: after a database crash the worst
 * case is a delivery made again, which the agent already handles. The participant-facing
 * assignment is written by the web app's pool, which keeps full durability.
 */
export function createAllocatorPool(connection: PgConnection, max = 5): pg.Pool {
  // Every connection kept: a delivery after a quiet spell must not wait for a new one.
  return createPgPool(
    { application_name: `${APPLICATION_NAME}-allocator`, ...connection, options: '-c synchronous_commit=off' },
    { max, keep: max },
  );
}
