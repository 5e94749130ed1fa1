/**
 * The one seam between the domain and a database driver. Statements use named
 * parameters (`:name`), the form the RDS Data API takes natively; the `pg`
 * executor rewrites them to positional ones.
 */
export type SqlValue = string | number | boolean | null | string[];
export type SqlParams = Record<string, SqlValue>;

/** A statement of a hot path with parameters that make it valid, run at start in a transaction that is rolled back (`PgSql.warm`). */
export interface WarmUp {
  statement: string;
  params?: SqlParams;
}

export interface Sql {
  query<Row extends object>(statement: string, params?: SqlParams): Promise<Row[]>;
}

/** A write broke a uniqueness rule (for example one VM per email). */
export class UniqueViolationError extends Error {
  constructor(readonly constraint: string | undefined) {
    super(`unique constraint violated${constraint ? `: ${constraint}` : ''}`);
    this.name = 'UniqueViolationError';
  }
}

/** The database could not be reached or refused the statement for a transient reason. */
export class DatabaseUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DatabaseUnavailableError';
  }
}

const NAMED_PARAMETER = /(?<![:\w]):([A-Za-z_]\w*)/g;

/** Rewrites `:name` placeholders to `$1…$n`, leaving `::type` casts alone. */
export function toPositional(statement: string, params: SqlParams = {}): { text: string; values: SqlValue[] } {
  const order: string[] = [];
  const text = statement.replace(NAMED_PARAMETER, (_match, name: string) => {
    if (!(name in params)) throw new Error(`SQL parameter :${name} has no value`);
    let index = order.indexOf(name);
    if (index < 0) index = order.push(name) - 1;
    return `$${index + 1}`;
  });
  return { text, values: order.map((name) => params[name]) };
}
