import { readFileSync } from 'node:fs';
import { PgConnection } from '../core/pg-sql';

export interface AllocatorConfig {
  port: number;
  holdSeconds: number;
  aliveGraceSeconds: number;
  fleetToken: string;
  database: PgConnection;
  logFormat: 'json' | 'text';
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    problems.push(`${name} must be a whole number from ${min} to ${max}.`);
    return fallback;
  }
  return Number(raw);
}

/**
 * The Fargate allocator's environment, read once. The database is either
 * LABLINK_DATABASE_URL or the standard PG* variables (ECS injects the password from
 * Secrets Manager); LABLINK_DATABASE_CA_FILE turns on verified TLS with that CA bundle.
 */
export function readAllocatorConfig(env: NodeJS.ProcessEnv): AllocatorConfig {
  const problems: string[] = [];
  const port = integer(env, 'PORT', 8080, 1, 65535, problems);
  const holdSeconds = integer(env, 'LABLINK_HOLD_SECONDS', 40, 1, 3600, problems);
  const aliveGraceSeconds = integer(env, 'LABLINK_ALIVE_GRACE_SECONDS', 20, 1, 3600, problems);
  const fleetToken = env.LABLINK_FLEET_TOKEN ?? '';
  if (fleetToken.length < 16) problems.push('LABLINK_FLEET_TOKEN must be set (at least 16 characters).');
  if (!env.LABLINK_DATABASE_URL && !env.PGHOST) problems.push('Set LABLINK_DATABASE_URL, or PGHOST with PGUSER, PGPASSWORD and PGDATABASE.');
  const caFile = env.LABLINK_DATABASE_CA_FILE;
  let ssl: PgConnection['ssl'];
  if (caFile) {
    try {
      ssl = { ca: readFileSync(caFile, 'utf8'), rejectUnauthorized: true };
    } catch {
      problems.push(`LABLINK_DATABASE_CA_FILE (${caFile}) cannot be read.`);
    }
  }
  if (problems.length > 0) throw new Error(`Allocator configuration: ${problems.join(' ')}`);
  return {
    port,
    holdSeconds,
    aliveGraceSeconds,
    fleetToken,
    database: { ...(env.LABLINK_DATABASE_URL ? { connectionString: env.LABLINK_DATABASE_URL } : {}), ...(ssl ? { ssl } : {}) },
    logFormat: env.LABLINK_LOG_FORMAT === 'text' ? 'text' : 'json',
  };
}
