import { createHash } from 'node:crypto';
import pg from 'pg';
import { DatabaseUnavailableError, Sql, SqlParams, UniqueViolationError, toPositional } from './sql';

const TIMESTAMPTZ_OID = 1184;
const TIMESTAMP_OID = 1114;

/** Rows carry timestamps as ISO strings with either executor, so domain code sees one shape. */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === TIMESTAMPTZ_OID || oid === TIMESTAMP_OID) {
      return (value: string) => new Date(value).toISOString();
    }
    return pg.types.getTypeParser(oid, format);
  },
};

/** Connection settings: a URL, or host/user/password/TLS; unset fields come from the PG* environment variables. */
export type PgConnection = pg.ClientConfig;

/** Names LabLink's sessions in pg_stat_activity, so they can be told apart (and counted). */
export const APPLICATION_NAME = 'lablink';

export function createPgPool(connection: PgConnection, max = 10): pg.Pool {
  const pool = new pg.Pool({ application_name: APPLICATION_NAME, ...connection, max, types, keepAlive: true });
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/** `Sql` over a `pg` pool: the executor for local mode and for the allocator. */
export class PgSql implements Sql {
  constructor(private readonly pool: pg.Pool) {}

  private readonly names = new Map<string, string>();

  async query<Row extends object>(statement: string, params?: SqlParams): Promise<Row[]> {
    const { text, values } = toPositional(statement, params);
    // Named, so each connection parses and plans a statement once and reuses the plan.
    let name = this.names.get(text);
    if (!name) {
      name = `lablink_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
      this.names.set(text, name);
    }
    try {
      const result = await this.pool.query({ name, text, values });
      return result.rows as Row[];
    } catch (error) {
      throw mapPgError(error);
    }
  }
}

const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08003', '08006']);

function mapPgError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as { code?: string }).code;
  if (code === '23505') return new UniqueViolationError((error as { constraint?: string }).constraint);
  if ((code && CONNECTION_ERROR_CODES.has(code)) || /Connection terminated/i.test(error.message)) {
    return new DatabaseUnavailableError(error.message, { cause: error });
  }
  return error;
}
