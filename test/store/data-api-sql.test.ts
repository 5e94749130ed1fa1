import { DatabaseErrorException, DatabaseResumingException, ExecuteStatementCommand, RDSDataClient } from '@aws-sdk/client-rds-data';
import { mockClient } from 'aws-sdk-client-mock';
import { DataApiSql } from '../../store/data-api-sql';
import { MIGRATIONS, migrate } from '../../store/migrations';
import { DatabaseUnavailableError, UniqueViolationError } from '../../store/sql';
import { recordPoll } from '../../store/vms';
import { TEST_DATA_API_TARGET, dataApiOnPostgres } from '../support/data-api-on-postgres';
import { createTestDatabase } from '../support/database';

describe('DataApiSql with the RDS Data API client mocked by aws-sdk-client-mock', () => {
  const client = new RDSDataClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const mock = mockClient(client);
  const sql = new DataApiSql(client, TEST_DATA_API_TARGET, { resumeAttempts: 3, resumeDelayMs: 1 });
  beforeEach(() => mock.reset());

  it('sends named, typed parameters to this cluster with its secret', async () => {
    mock.on(ExecuteStatementCommand).resolves({ records: [], columnMetadata: [] });
    await sql.query('SELECT :a, :b, :c, :d, :e', { a: 'text', b: 42, c: 1.5, d: true, e: null });
    const input = mock.commandCalls(ExecuteStatementCommand)[0].args[0].input;
    expect(input).toMatchObject({ ...TEST_DATA_API_TARGET, sql: 'SELECT :a, :b, :c, :d, :e', includeResultMetadata: true });
    expect(input.parameters).toEqual([
      { name: 'a', value: { stringValue: 'text' } },
      { name: 'b', value: { longValue: 42 } },
      { name: 'c', value: { doubleValue: 1.5 } },
      { name: 'd', value: { booleanValue: true } },
      { name: 'e', value: { isNull: true } },
    ]);
  });

  it('maps records to rows by column label, with timestamps as ISO strings', async () => {
    mock.on(ExecuteStatementCommand).resolves({
      columnMetadata: [
        { label: 'hostname', typeName: 'text' },
        { label: 'count', typeName: 'int4' },
        { label: 'assigned_at', typeName: 'timestamptz' },
        { label: 'fresh', typeName: 'bool' },
        { label: 'email', typeName: 'text' },
      ],
      records: [
        [
          { stringValue: 'vm-1' },
          { longValue: 3 },
          { stringValue: '2026-11-26 21:30:05.123456' },
          { booleanValue: false },
          { isNull: true },
        ],
      ],
    });
    expect(await sql.query('SELECT 1')).toEqual([
      { hostname: 'vm-1', count: 3, assigned_at: '2026-11-26T21:30:05.123Z', fresh: false, email: null },
    ]);
  });

  it('retries while an auto-paused cluster resumes', async () => {
    mock
      .on(ExecuteStatementCommand)
      .rejectsOnce(new DatabaseResumingException({ message: 'resuming', $metadata: {} }))
      .resolves({ records: [[{ longValue: 1 }]], columnMetadata: [{ label: 'one', typeName: 'int4' }] });
    expect(await sql.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    expect(mock.commandCalls(ExecuteStatementCommand)).toHaveLength(2);
  });

  it('gives up after the configured attempts with a DatabaseUnavailableError', async () => {
    mock.on(ExecuteStatementCommand).rejects(new DatabaseResumingException({ message: 'resuming', $metadata: {} }));
    await expect(sql.query('SELECT 1')).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(mock.commandCalls(ExecuteStatementCommand)).toHaveLength(3);
  });

  it('maps a unique violation to the same domain error as the pg executor', async () => {
    mock.on(ExecuteStatementCommand).rejects(
      new DatabaseErrorException({
        message:
          'ERROR: duplicate key value violates unique constraint "vms_email_key"\n  Detail: Key (email)=(a@example.com) already exists.; SQLState: 23505',
        $metadata: {},
      }),
    );
    const error = await sql.query('UPDATE vms SET email = :e', { e: 'a@example.com' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UniqueViolationError);
    expect((error as UniqueViolationError).constraint).toBe('vms_email_key');
  });

  it('refuses array parameters, which the Data API does not take', async () => {
    await expect(sql.query('SELECT :names', { names: ['a'] })).rejects.toThrow(/no array parameters/);
    expect(mock.commandCalls(ExecuteStatementCommand)).toHaveLength(0);
  });
});

describe('migrations through the Data API executor (client mocked with aws-sdk-client-mock, answered by real PostgreSQL)', () => {
  it('refuses two statements in one call, as the Data API does, and runs neither', async () => {
    const db = await createTestDatabase({ migrate: false });
    try {
      const { sql } = dataApiOnPostgres(db.pool);
      await expect(sql.query('CREATE TABLE first_one (id int); CREATE TABLE second_one (id int)')).rejects.toThrow(
        /cannot insert multiple commands into a prepared statement/,
      );
      const { rows } = await db.pool.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`);
      expect(rows).toEqual([]);
    } finally {
      await db.drop();
    }
  });

  it('creates the schema on an empty database, one statement per call, and the trigger works', async () => {
    const db = await createTestDatabase({ migrate: false });
    try {
      const { sql, mock } = dataApiOnPostgres(db.pool);
      expect(await migrate(sql)).toEqual(MIGRATIONS.map((migration) => migration.version));
      expect(mock.commandCalls(ExecuteStatementCommand).length).toBeGreaterThan(MIGRATIONS[0].statements.length);
      await recordPoll(sql, 'vm-1', 60);
      const listener = await db.pool.connect();
      try {
        const notified = new Promise<string | undefined>((resolve) => listener.on('notification', (message) => resolve(message.payload)));
        await listener.query('LISTEN vm_updates');
        await sql.query(`UPDATE vms SET state = 'assigned' WHERE hostname = 'vm-1'`);
        expect(JSON.parse((await notified)!)).toEqual({ hostname: 'vm-1', state: 'assigned' });
      } finally {
        listener.release();
      }
      expect(await migrate(sql)).toEqual([]);
    } finally {
      await db.drop();
    }
  });
});
