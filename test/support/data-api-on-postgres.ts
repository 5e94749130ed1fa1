import {
  DatabaseErrorException,
  ExecuteStatementCommand,
  ExecuteStatementCommandInput,
  Field,
  RDSDataClient,
} from '@aws-sdk/client-rds-data';
import { AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import pg from 'pg';
import { DataApiSql } from '../../store/data-api-sql';
import { Sql, SqlValue, toPositional } from '../../store/sql';
import { TestDatabase, createTestDatabase } from './database';

export const TEST_DATA_API_TARGET = {
  resourceArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:lablink-test',
  secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:lablink-db-AbCdEf',
  database: 'lablink',
};
/** The app role's secret, beside the owner's (`TEST_DATA_API_TARGET.secretArn`). */
export const TEST_APP_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:lablink-app-GhIjKl';

const TYPE_NAMES: Record<number, string> = {
  16: 'bool',
  20: 'int8',
  21: 'int2',
  23: 'int4',
  25: 'text',
  700: 'float4',
  701: 'float8',
  1114: 'timestamp',
  1184: 'timestamptz',
  2950: 'uuid',
};
const RAW_TEXT = { getTypeParser: () => (value: string) => value };

function fromField(field: Field | undefined): SqlValue {
  if (!field || field.isNull) return null;
  return (field.stringValue ?? field.longValue ?? field.doubleValue ?? field.booleanValue ?? null) as SqlValue;
}

/** Renders a PostgreSQL text value as the Data API does (timestamps in UTC without an offset). */
function toField(value: string | null, typeName: string): Field {
  if (value === null) return { isNull: true };
  if (typeName === 'bool') return { booleanValue: value === 't' };
  if (typeName.startsWith('int')) return { longValue: Number(value) };
  if (typeName.startsWith('float')) return { doubleValue: Number(value) };
  if (typeName === 'timestamptz') return { stringValue: new Date(value).toISOString().replace('T', ' ').replace('Z', '') };
  return { stringValue: value };
}

/**
 * The RDS Data API cannot run here, so its client is mocked with aws-sdk-client-mock,
 * and each ExecuteStatement is answered by the real PostgreSQL the tests started,
 * shaped as the Data API shapes its records and errors. Given a pool per secret ARN, each call
 * runs as the role its secret names, as the Data API signs in with that secret.
 */
export function answerDataApiWithPostgres(mock: AwsClientStub<RDSDataClient>, pools: pg.Pool | Record<string, pg.Pool>): void {
  mock.on(ExecuteStatementCommand).callsFake(async (input: ExecuteStatementCommandInput) => {
    const pool = pools instanceof pg.Pool ? pools : pools[input.secretArn!];
    if (!pool) throw new Error(`no database credentials for the secret ${input.secretArn}`);
    const params = Object.fromEntries((input.parameters ?? []).map((parameter) => [parameter.name!, fromField(parameter.value)]));
    const { text, values } = toPositional(input.sql!, params);
    let result: pg.QueryResult<string[]>;
    try {
      // The Data API runs exactly one statement per call: the extended protocol refuses two, as it does.
      const query: pg.QueryArrayConfig & { queryMode: 'extended' } = {
        text,
        values,
        rowMode: 'array',
        types: RAW_TEXT,
        queryMode: 'extended',
      };
      result = await pool.query(query);
    } catch (error) {
      const pgError = error as { code?: string; message: string };
      throw new DatabaseErrorException({ message: `ERROR: ${pgError.message}; SQLState: ${pgError.code}`, $metadata: {} });
    }
    const columnMetadata = (result.fields ?? []).map((field) => ({
      name: field.name,
      label: field.name,
      typeName: TYPE_NAMES[field.dataTypeID] ?? 'text',
    }));
    const records = (result.rows ?? []).map((row) => row.map((value, index) => toField(value, columnMetadata[index].typeName)));
    return { records, columnMetadata, numberOfRecordsUpdated: result.rowCount ?? 0 };
  });
}

/** A DataApiSql whose client instance is mocked and answered by `pool`. */
export function dataApiOnPostgres(pool: pg.Pool): { sql: DataApiSql; mock: AwsClientStub<RDSDataClient> } {
  const client = new RDSDataClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const mock = mockClient(client);
  answerDataApiWithPostgres(mock, pool);
  return { sql: new DataApiSql(client, TEST_DATA_API_TARGET, { resumeAttempts: 3, resumeDelayMs: 1 }), mock };
}

/** Both executors over one test database: a suite runs once through `pg` and once through the Data API. */
export const SQL_EXECUTORS: [string, (db: TestDatabase) => Sql][] = [
  ['pg', (db) => db.sql],
  ['the Data API (client mocked with aws-sdk-client-mock, answered by real PostgreSQL)', (db) => dataApiOnPostgres(db.pool).sql],
];

/** Registers a suite's hooks: a fresh test database, reached through `executorFor`, dropped at the end. */
export function useTestDatabase(executorFor: (db: TestDatabase) => Sql): { readonly db: TestDatabase; readonly sql: Sql } {
  let db: TestDatabase | undefined;
  let sql: Sql | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
    sql = executorFor(db);
  });
  afterAll(async () => db?.drop());
  return {
    get db() {
      if (!db) throw new Error('The test database is used before its beforeAll ran.');
      return db;
    },
    get sql() {
      if (!sql) throw new Error('The test database is used before its beforeAll ran.');
      return sql;
    },
  };
}
