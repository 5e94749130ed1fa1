import { randomBytes } from 'node:crypto';
import { ASSIGNMENT_WARM_UP, requestVm } from '../../store/assignment';
import { DEFAULT_LINE_POLICY } from '../../store/waiting-line';
import { generateSecret } from '../../core/secrets';
import { PLAN_SETTLING_RUNS, PgSql, createPgPool } from '../../store/pg-sql';
import { DELIVERY_WARM_UP } from '../../store/vms';
import { TestDatabase, createTestDatabase, dumpDatabase } from '../support/database';
import { crdCommand, waitFor } from '../support/fixtures';

describe('the pg pool after a quiet spell (real PostgreSQL)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  async function backends(applicationName: string): Promise<number[]> {
    const { rows } = await db.pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid`, [
      applicationName,
    ]);
    return rows.map((row) => row.pid);
  }

  it('keeps the connections it keeps across an idle spell longer than its idle timeout, and closes those a burst added', async () => {
    const applicationName = `keep-${randomBytes(4).toString('hex')}`;
    const pool = createPgPool(
      { connectionString: db.appUrl, application_name: applicationName },
      { max: 4, keep: 2, idleTimeoutMillis: 100 },
    );
    try {
      await new PgSql(pool).warm([]);
      const warmed = await backends(applicationName);
      expect(warmed).toHaveLength(2);
      // A burst opens the rest of the pool: four sessions at once.
      const burst = await Promise.all(
        Array.from({ length: 4 }, () => pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_sleep(0.2)')),
      );
      const burstPids = burst.map((result) => result.rows[0].pid);
      expect(new Set(burstPids).size).toBe(4);

      // Well past the idle timeout, the two kept sessions are still there, and no new one was opened.
      await waitFor(async () => (await backends(applicationName)).length === 2, 'the extra connections of the burst to close');
      await new Promise((resolve) => setTimeout(resolve, 500));
      const kept = await backends(applicationName);
      expect(kept).toHaveLength(2);
      for (const pid of kept) expect(burstPids).toContain(pid);
      const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect(kept).toContain(rows[0].pid);
    } finally {
      await pool.end();
    }
  });

  it('warms every kept connection: the hot statements are prepared on each, and nothing in the database changed', async () => {
    await db.pool.query(`INSERT INTO vms (hostname, alive_until) VALUES ('warm-free-1', now() + interval '1 hour')`);
    const before = await dumpDatabase(db.pool);
    const pool = createPgPool({ connectionString: db.appUrl }, { max: 3, keep: 3 });
    try {
      await new PgSql(pool).warm([...ASSIGNMENT_WARM_UP, ...DELIVERY_WARM_UP]);
      expect(pool.totalCount).toBe(3);
      const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
      try {
        for (const client of clients) {
          const { rows } = await client.query<{ prepared: number }>('SELECT count(*)::int AS prepared FROM pg_prepared_statements');
          expect(rows[0].prepared).toBe(ASSIGNMENT_WARM_UP.length + DELIVERY_WARM_UP.length);
        }
      } finally {
        for (const client of clients) client.release();
      }
      expect(await dumpDatabase(db.pool)).toBe(before);
    } finally {
      await pool.end();
    }
  });

  it('prepares every statement of a form post on the kept connections: the first participants after a start prepare none of their own', async () => {
    await db.pool.query(`INSERT INTO vms (hostname, alive_until) VALUES ('warm-form-1', now() + interval '1 hour')`);
    const pool = createPgPool({ connectionString: db.appUrl }, { max: 1, keep: 1 });
    const prepared = async () =>
      (await pool.query<{ prepared: number }>('SELECT count(*)::int AS prepared FROM pg_prepared_statements')).rows[0].prepared;
    try {
      const sql = new PgSql(pool);
      await sql.warm(ASSIGNMENT_WARM_UP);
      const warmed = await prepared();
      // As a browser with the retry cookie of an earlier submission posts it (the line open, behind the per-address limit); then the same again.
      const post = { email: 'warm-form@example.com', crdCommand: crdCommand(), retryToken: generateSecret() };
      const client = { address: '198.51.100.7', addressLimit: { vms: 5, windowSeconds: 600 }, line: DEFAULT_LINE_POLICY };
      const first = await requestVm(sql, post, client);
      expect(first).toMatchObject({ kind: 'assigned', outcome: 'assigned' });
      expect(await requestVm(sql, post, client)).toMatchObject({
        kind: 'assigned',
        outcome: 'existing',
        hostname: (first as { hostname: string }).hostname,
      });
      expect(await prepared()).toBe(warmed);
    } finally {
      await pool.end();
    }
  });

  it('warms each kept connection until its plans settle, the assignment and its triggers run whole even when no VM is free', async () => {
    await db.pool.query(`UPDATE vms SET alive_until = now() - interval '1 second'`);
    const before = await dumpDatabase(db.pool);
    // As the owner, so the sessions may count their calls of PL/pgSQL functions (triggers).
    const pool = createPgPool({ connectionString: db.url, options: '-c track_functions=pl' }, { max: 2, keep: 2 });
    const triggerCalls = async () =>
      Object.fromEntries(
        (await db.pool.query<{ funcname: string; calls: number }>(`SELECT funcname, calls::int FROM pg_stat_user_functions`)).rows.map(
          (row) => [row.funcname, row.calls],
        ),
      );
    try {
      await new PgSql(pool).warm(ASSIGNMENT_WARM_UP);
      const clients = await Promise.all([pool.connect(), pool.connect()]);
      try {
        for (const client of clients) {
          const { rows } = await client.query<{ runs: number; generic: number; statement: string }>(
            `SELECT (generic_plans + custom_plans)::int AS runs, generic_plans::int AS generic, statement FROM pg_prepared_statements`,
          );
          expect(rows.map((row) => row.runs)).toEqual(ASSIGNMENT_WARM_UP.map(() => PLAN_SETTLING_RUNS));
          // Settled: each has its generic plan, so the next run plans nothing.
          expect(rows.filter((row) => row.generic === 0).map((row) => row.statement)).toEqual([]);
        }
      } finally {
        for (const client of clients) client.release();
      }
    } finally {
      // Sessions send their counts when they end.
      await pool.end();
    }
    await waitFor(async () => {
      const calls = await triggerCalls();
      // Only an assignment changes a VM's state and opens a history row (whose line-wait trigger runs).
      return calls.notify_vm_update === 2 * PLAN_SETTLING_RUNS && calls.record_line_wait === 2 * PLAN_SETTLING_RUNS;
    }, 'each warm session to have run the assignment and its triggers six times');
    expect(await dumpDatabase(db.pool)).toBe(before);
  });
});
