import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { AppRole, ensureAppRole, newAppRole, urlAs } from '../../store/app-role';
import { migrate } from '../../store/migrations';
import { PgSql, createPgPool } from '../../store/pg-sql';

export interface TestDatabase {
  /** The database as its owner (the server's superuser). */
  url: string;
  /** This database's own app role, so test files running at once never rotate each other's password. */
  appRole: AppRole;
  /** The database as the app role. */
  appUrl: string;
  /** The executor as the app runs it: connected as the app role. */
  sql: PgSql;
  /** The app role's pool, for the Data API double. */
  appPool: pg.Pool;
  /** The owner's pool: fixtures, dumps and checks the app itself may not make. */
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

async function asServerOwner(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/**
 * A fresh database on the test server, so test files never share state: migrated by its owner,
 * who then sets up its app role, as local mode and the AWS custom resource do. Without
 * `migrate` it is empty and its app role does not exist yet.
 */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `test_${randomBytes(6).toString('hex')}`;
  await asServerOwner(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  const appRole = newAppRole(`${name}_app`);
  const appUrl = urlAs(url.toString(), appRole);
  const pool = createPgPool({ connectionString: url.toString() });
  if (options.migrate ?? true) {
    const owner = new PgSql(pool);
    await migrate(owner);
    await ensureAppRole(owner, appRole);
  }
  const appPool = createPgPool({ connectionString: appUrl });
  return {
    url: url.toString(),
    appRole,
    appUrl,
    sql: new PgSql(appPool),
    appPool,
    pool,
    dumpVms: async () => (await pool.query('SELECT * FROM vms ORDER BY hostname')).rows,
    async drop() {
      await Promise.all([pool.end(), appPool.end()]);
      await asServerOwner(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      // Its grants went with the database; the role itself is the server's.
      await asServerOwner(`DROP ROLE IF EXISTS ${appRole.name}`);
    },
  };
}

/** Every row of every table, as PostgreSQL renders it: equal text means the database is unchanged. */
export async function dumpDatabase(pool: pg.Pool): Promise<string> {
  const { rows: tables } = await pool.query<{ name: string }>(
    `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`,
  );
  const parts: string[] = [];
  for (const { name } of tables) {
    const { rows } = await pool.query<{ dump: string }>(
      `SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') AS dump FROM "${name}" t`,
    );
    parts.push(`-- ${name}\n${rows[0].dump}`);
  }
  return parts.join('\n');
}
