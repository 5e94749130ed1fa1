import { ColumnMetadata, ExecuteStatementCommand, Field, RDSDataClient, SqlParameter } from '@aws-sdk/client-rds-data';
import { setTimeout as sleep } from 'node:timers/promises';
import { DatabaseUnavailableError, Sql, SqlParams, SqlValue, UniqueViolationError } from './sql';

export interface DataApiTarget {
  /** The Aurora cluster's ARN. */
  resourceArn: string;
  /** The Secrets Manager secret with the database credentials. */
  secretArn: string;
  database: string;
}

export interface DataApiRetryOptions {
  /** How often to retry while an auto-paused Aurora Serverless v2 cluster resumes. */
  resumeAttempts: number;
  resumeDelayMs: number;
}

/** About 20 s of waiting in all: inside the form Lambda's timeout, enough for a cluster to resume. */
const DEFAULT_RETRY: DataApiRetryOptions = { resumeAttempts: 6, resumeDelayMs: 1_300 };
const UNAVAILABLE_ERRORS = new Set([
  'DatabaseUnavailableException',
  'ServiceUnavailableError',
  'StatementTimeoutException',
  'InternalServerErrorException',
]);
const TIMESTAMP_TYPES = new Set(['timestamptz', 'timestamp']);

function toParameter(name: string, value: SqlValue): SqlParameter {
  if (value === null) return { name, value: { isNull: true } };
  if (typeof value === 'string') return { name, value: { stringValue: value } };
  if (typeof value === 'boolean') return { name, value: { booleanValue: value } };
  if (typeof value === 'number') return { name, value: Number.isInteger(value) ? { longValue: value } : { doubleValue: value } };
  throw new Error(`SQL parameter :${name}: the Data API takes no array parameters`);
}

/** The Data API returns timestamps as "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC; rows carry ISO strings. */
function toIsoTimestamp(value: string): string {
  return new Date(`${value.replace(' ', 'T')}Z`).toISOString();
}

function fieldValue(field: Field, column: ColumnMetadata | undefined): unknown {
  if (field.isNull) return null;
  if (field.stringValue !== undefined) {
    return TIMESTAMP_TYPES.has(column?.typeName ?? '') ? toIsoTimestamp(field.stringValue) : field.stringValue;
  }
  if (field.longValue !== undefined) return field.longValue;
  if (field.doubleValue !== undefined) return field.doubleValue;
  if (field.booleanValue !== undefined) return field.booleanValue;
  if (field.blobValue !== undefined) return Buffer.from(field.blobValue);
  if (field.arrayValue !== undefined) {
    const array = field.arrayValue;
    return array.stringValues ?? array.longValues ?? array.doubleValues ?? array.booleanValues ?? [];
  }
  return null;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : '';
}

/** Data API errors become the same domain errors as the `pg` executor's. */
function mapDataApiError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  // DatabaseErrorException carries PostgreSQL's message and SQLSTATE in its text.
  if (/SQLState:\s*23505/.test(error.message)) {
    return new UniqueViolationError(/unique constraint "([^"]+)"/.exec(error.message)?.[1]);
  }
  if (UNAVAILABLE_ERRORS.has(error.name) || error.name === 'DatabaseResumingException') {
    return new DatabaseUnavailableError(error.message, { cause: error });
  }
  return error;
}

/** `Sql` over the RDS Data API: the executor for the Lambda handlers in AWS. */
export class DataApiSql implements Sql {
  constructor(
    private readonly client: RDSDataClient,
    private readonly target: DataApiTarget,
    private readonly retry: DataApiRetryOptions = DEFAULT_RETRY,
  ) {}

  async query<Row extends object>(statement: string, params: SqlParams = {}): Promise<Row[]> {
    const command = new ExecuteStatementCommand({
      ...this.target,
      sql: statement,
      parameters: Object.entries(params).map(([name, value]) => toParameter(name, value)),
      includeResultMetadata: true,
    });
    for (let attempt = 1; ; attempt += 1) {
      try {
        const output = await this.client.send(command);
        const columns = output.columnMetadata ?? [];
        return (output.records ?? []).map(
          (record) =>
            Object.fromEntries(
              record.map((field, index) => [
                columns[index]?.label ?? columns[index]?.name ?? `column${index}`,
                fieldValue(field, columns[index]),
              ]),
            ) as Row,
        );
      } catch (error) {
        if (errorName(error) === 'DatabaseResumingException' && attempt < this.retry.resumeAttempts) {
          await sleep(this.retry.resumeDelayMs * attempt);
          continue;
        }
        throw mapDataApiError(error);
      }
    }
  }
}
