import { readFileSync } from 'node:fs';
import { DEFAULT_REPAIR_POLICY, RepairPolicy } from '../core/health';
import { PgConnection } from '../core/pg-sql';
import { DEFAULT_HOLD_SECONDS, MAX_HOLD_SECONDS } from './timeouts';

export type IdentityConfig =
  | { mode: 'token'; fleetToken: string }
  /** EC2 identity; a fleet token, when also given, admits LabLink-compatible clients too. */
  | { mode: 'ec2'; region: string; fleet: string; accountId?: string; fleetToken?: string };

export interface AllocatorConfig {
  port: number;
  holdSeconds: number;
  aliveGraceSeconds: number;
  identity: IdentityConfig;
  repairPolicy: RepairPolicy;
  /** Free VMs the warm pool keeps running (EC2 only); no warm pool when unset. */
  warmVms?: number;
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
  const holdSeconds = integer(env, 'LABLINK_HOLD_SECONDS', DEFAULT_HOLD_SECONDS, 1, MAX_HOLD_SECONDS, problems);
  const aliveGraceSeconds = integer(env, 'LABLINK_ALIVE_GRACE_SECONDS', 20, 1, 3600, problems);
  const repairPolicy: RepairPolicy = {
    staleSeconds: integer(env, 'LABLINK_STALE_SECONDS', DEFAULT_REPAIR_POLICY.staleSeconds, 10, 86_400, problems),
    repairAfterSeconds: integer(env, 'LABLINK_REPAIR_AFTER_SECONDS', DEFAULT_REPAIR_POLICY.repairAfterSeconds, 10, 86_400, problems),
    maxReboots: integer(env, 'LABLINK_MAX_REBOOTS', DEFAULT_REPAIR_POLICY.maxReboots, 0, 20, problems),
    cooldownSeconds: integer(env, 'LABLINK_REBOOT_COOLDOWN_SECONDS', DEFAULT_REPAIR_POLICY.cooldownSeconds, 0, 86_400, problems),
  };
  const warmVms = env.LABLINK_WARM_VMS ? integer(env, 'LABLINK_WARM_VMS', 0, 0, 1000, problems) : undefined;
  const fleetToken = env.LABLINK_FLEET_TOKEN || undefined;
  if (fleetToken !== undefined && fleetToken.length < 16) problems.push('LABLINK_FLEET_TOKEN must be at least 16 characters.');
  let identity: IdentityConfig | undefined;
  const mode = env.LABLINK_IDENTITY_MODE || 'token';
  if (mode === 'token') {
    if (!fleetToken) problems.push('LABLINK_FLEET_TOKEN must be set (at least 16 characters).');
    else identity = { mode, fleetToken };
  } else if (mode === 'ec2') {
    const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
    if (!region) problems.push('AWS_REGION must be set for LABLINK_IDENTITY_MODE=ec2.');
    if (!env.LABLINK_FLEET_NAME) problems.push('LABLINK_FLEET_NAME must name the fleet for LABLINK_IDENTITY_MODE=ec2.');
    if (region && env.LABLINK_FLEET_NAME) {
      identity = { mode, region, fleet: env.LABLINK_FLEET_NAME, accountId: env.LABLINK_AWS_ACCOUNT || undefined, fleetToken };
    }
  } else {
    problems.push('LABLINK_IDENTITY_MODE must be "token" or "ec2".');
  }
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
    identity: identity!,
    repairPolicy,
    ...(warmVms !== undefined ? { warmVms } : {}),
    database: { ...(env.LABLINK_DATABASE_URL ? { connectionString: env.LABLINK_DATABASE_URL } : {}), ...(ssl ? { ssl } : {}) },
    logFormat: env.LABLINK_LOG_FORMAT === 'text' ? 'text' : 'json',
  };
}
