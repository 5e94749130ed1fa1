import pg from 'pg';
import { AppRole, appRoleStatement, ensureAppRole, scramVerifier, urlAs } from '../../store/app-role';
import { requestVm } from '../../store/assignment';
import { Logger } from '../../core/log';
import { PgSql } from '../../store/pg-sql';
import { recordPoll } from '../../store/vms';
import { TestDatabase, createTestDatabase } from '../support/database';
import { crdCommand, waitFor } from '../support/fixtures';
import { pollAsVm, startTestStack, submitForm } from '../support/stack';

async function connectAs(db: TestDatabase, role: AppRole): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: urlAs(db.url, role) });
  await client.connect();
  return client;
}

/** Every grant in the database and the role's attributes, as PostgreSQL stores them. */
async function privileges(db: TestDatabase): Promise<unknown[]> {
  const { rows } = await db.pool.query(
    `SELECT 'table ' || relname AS object, relacl::text AS acl FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relacl IS NOT NULL
     UNION ALL SELECT 'schema public', nspacl::text FROM pg_namespace WHERE nspname = 'public'
     UNION ALL SELECT 'default ' || defaclobjtype::text, defaclacl::text FROM pg_default_acl
     UNION ALL SELECT 'role', concat_ws(' ', rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin) FROM pg_roles WHERE rolname = $1
     ORDER BY 1`,
    [db.appRole.name],
  );
  return rows;
}

describe('the app role (real PostgreSQL): the rows, and nothing else', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  it('is an ordinary login role that owns nothing', async () => {
    const { rows } = await db.pool.query(
      `SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin,
         has_schema_privilege(rolname, 'public', 'CREATE') AS can_create,
         has_schema_privilege('public', 'public', 'CREATE') AS everyone_can_create,
         (SELECT count(*)::int FROM pg_class WHERE relowner = pg_roles.oid) AS owned
       FROM pg_roles WHERE rolname = $1`,
      [db.appRole.name],
    );
    expect(rows).toEqual([
      {
        rolsuper: false,
        rolcreaterole: false,
        rolcreatedb: false,
        rolreplication: false,
        rolbypassrls: false,
        rolcanlogin: true,
        can_create: false,
        everyone_can_create: false,
        owned: 0,
      },
    ]);
  });

  it.each([
    ['CREATE TABLE', 'CREATE TABLE intruder (id int)'],
    ['DROP TABLE', 'DROP TABLE vms'],
    ['ALTER TABLE', 'ALTER TABLE vms ADD COLUMN intruder text'],
    ['TRUNCATE', 'TRUNCATE vms'],
    ['CREATE INDEX', 'CREATE INDEX intruder ON vms (email)'],
    ['DROP TRIGGER', 'DROP TRIGGER vms_notify_update ON vms'],
    ['CREATE FUNCTION', 'CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$'],
    ['writing the migration bookkeeping', `INSERT INTO schema_migrations (version, description) VALUES (999, 'skip')`],
  ])('is refused %s', async (_what, statement) => {
    await expect(db.sql.query(statement)).rejects.toMatchObject({ code: '42501' });
  });

  it('runs the app’s DML, and its updates fire the trigger’s notification to a LISTEN of its own', async () => {
    const listener = await connectAs(db, db.appRole);
    try {
      const notified = new Promise<string | undefined>((resolve) => listener.on('notification', (message) => resolve(message.payload)));
      await listener.query('LISTEN vm_updates');
      await recordPoll(db.sql, 'role-vm-1', 60);
      const assigned = await requestVm(db.sql, { email: 'role@example.com', crdCommand: crdCommand() });
      expect(assigned).toMatchObject({ kind: 'assigned', hostname: 'role-vm-1' });
      expect(JSON.parse((await notified)!)).toEqual({ hostname: 'role-vm-1', state: 'assigned' });
      await db.sql.query(`DELETE FROM vms WHERE hostname = 'role-vm-1'`);
    } finally {
      await listener.end();
    }
  });

  it('may use a table the owner creates later, with its sequence, before the grants run again', async () => {
    await db.pool.query('CREATE TABLE later_log (id bigserial PRIMARY KEY, line text NOT NULL)');
    try {
      await db.sql.query(`INSERT INTO later_log (line) VALUES ('booted')`);
      expect(await db.sql.query('SELECT id, line FROM later_log')).toEqual([{ id: '1', line: 'booted' }]);
    } finally {
      await db.pool.query('DROP TABLE later_log');
    }
  });

  it('is set up again without a change, also by runs that start together', async () => {
    const before = await privileges(db);
    const owner = new PgSql(db.pool);
    await Promise.all([1, 2, 3].map(() => ensureAppRole(owner, db.appRole)));
    expect(await privileges(db)).toEqual(before);
    expect(await db.sql.query('SELECT count(*)::int AS count FROM vms')).toHaveLength(1);
  });

  it('rotates its password on every run: the old one stops working', async () => {
    const owner = new PgSql(db.pool);
    // Quotes, dollars and a `:name` cannot break the statement: only a verifier of the password is in it.
    const rotated = { name: db.appRole.name, password: `n3w'pa$$word:name"${Date.now()}` };
    try {
      await ensureAppRole(owner, rotated);
      await expect(connectAs(db, db.appRole)).rejects.toMatchObject({ code: '28P01' });
      const client = await connectAs(db, rotated);
      await client.end();
    } finally {
      await ensureAppRole(owner, db.appRole);
    }
    const client = await connectAs(db, db.appRole);
    await client.end();
  });

  it('refuses a role name or password that it could not set safely, before any SQL', async () => {
    const verifier = scramVerifier('a-good-password-1234');
    expect(() => appRoleStatement('app"; DROP TABLE vms; --', verifier)).toThrow(/lower-case SQL identifier/);
    expect(() => appRoleStatement('App', verifier)).toThrow(/lower-case SQL identifier/);
    const sql = { query: jest.fn() };
    await expect(ensureAppRole(sql, { name: 'lablink_app', password: 'short' })).rejects.toThrow(/16 to 128 printable ASCII/);
    await expect(ensureAppRole(sql, { name: 'lablink_app', password: 'påssword-with-ümlauts' })).rejects.toThrow(/printable ASCII/);
    expect(sql.query).not.toHaveBeenCalled();
  });
});

describe('the local stack as the app role', () => {
  it('runs the workflow and never logs the app role’s password', async () => {
    const lines: string[] = [];
    const write = (event: string, fields?: object) => lines.push(`${event} ${JSON.stringify(fields ?? {})}`);
    const log: Logger = { info: write, warn: write, error: write };
    const env = await startTestStack({ log });
    try {
      const poll = pollAsVm(env.url, 'log-vm-1');
      await waitFor(() => env.stack.allocator.holds.size === 1, 'the poll to be held');
      const response = await submitForm(env.url, { email: 'log@example.com', crd_command: crdCommand() });
      expect(response.status).toBe(200);
      expect(await (await poll).json()).toMatchObject({ status: 'success', command: expect.stringContaining('start-host') });
      const { rows } = await env.db.pool.query(
        `SELECT DISTINCT application_name, usename FROM pg_stat_activity
         WHERE datname = current_database() AND application_name IN ('lablink-web', 'lablink-allocator', 'lablink-allocator-listen') ORDER BY 1`,
      );
      const appRole = env.db.appRole.name;
      expect(rows).toEqual([
        { application_name: 'lablink-allocator', usename: appRole },
        { application_name: 'lablink-allocator-listen', usename: appRole },
        { application_name: 'lablink-web', usename: appRole },
      ]);
    } finally {
      await env.close();
    }
    expect(lines.join('\n')).not.toContain(env.db.appRole.password);
  });
});
