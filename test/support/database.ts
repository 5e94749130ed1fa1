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
