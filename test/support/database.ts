import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../core/migrations';
import { PgSql, createPgPool } from '../../core/pg-sql';

export interface TestDatabase {
  url: string;
  sql: PgSql;
  pool: pg.Pool;
  /** Every row of `vms`, ordered, for before/after comparisons. */
  dumpVms(): Promise<unknown[]>;
  drop(): Promise<void>;
}

function serverUrl(): string {
  const url = process.env.LABLINK_TEST_POSTGRES_URL;
  if (!url) throw new Error('LABLINK_TEST_POSTGRES_URL is not set: run the tests through jest (its globalSetup starts PostgreSQL).');
  return url;
}

/** A fresh, migrated database on the test server, so test files never share state. */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  const pool = createPgPool({ connectionString: url.toString() });
  const sql = new PgSql(pool);
  if (options.migrate ?? true) await migrate(sql);
  return {
    url: url.toString(),
    sql,
    pool,
    dumpVms: async () => (await pool.query('SELECT * FROM vms ORDER BY hostname')).rows,
    async drop() {
      await pool.end();
      const client = new pg.Client({ connectionString: serverUrl() });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/** Every row of every table, as PostgreSQL renders it: equal text means the database is unchanged. */
export async function dumpDatabase(pool: pg.Pool): Promise<string> {
  const { rows: tables } = await pool.query<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
  const parts: string[] = [];
  for (const { name } of tables) {
    const { rows } = await pool.query<{ dump: string }>(`SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') AS dump FROM "${name}" t`);
    parts.push(`-- ${name}\n${rows[0].dump}`);
  }
  return parts.join('\n');
}
