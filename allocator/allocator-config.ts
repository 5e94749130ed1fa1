import { readFileSync } from 'node:fs';
import * as v from 'valibot';
import { DEFAULT_REPAIR_POLICY, RepairPolicy } from '../store/health';
import { FleetNames } from '../store/replacement';
import { HOSTNAME_PATTERN } from '../contract/wire';
import { PgConnection } from '../store/pg-sql';
import { checkAll } from '../core/validate';
import { DEFAULT_HOLD_SECONDS, MAX_HOLD_SECONDS } from '../contract/timeouts';

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
  /** The fleet's spares group, whose instances take over failed VMs' names (EC2 only); none when unset. */
  spares?: { groupName: string; maxReplacements: number; names?: FleetNames };
  database: PgConnection;
  logFormat: 'json' | 'text';
}

function wholeNumber(name: string, min: number, max: number) {
  const message = `${name} must be a whole number from ${min} to ${max}.`;
  return v.pipe(v.string(), v.regex(/^\d+$/, message), v.transform(Number), v.minValue(min, message), v.maxValue(max, message));
}

/** An unset variable takes the fallback, checked as if it had been set to it. */
const integer = (name: string, fallback: number, min: number, max: number) => v.optional(wholeNumber(name, min, max), String(fallback));

/** Tried here so one error lists every problem; the config below reads the file again to keep it. */
const canRead = (file: string) => {
  try {
    readFileSync(file);
    return true;
  } catch {
    return false;
  }
};

const text = v.optional(v.string());

/**
 * Rules between variables come after each variable's own check, in a stable order. Each is checked
 * when the variables it reads are valid (partialCheck), even if others are not, so one error lists
 * every problem; its issue is filed under a variable (forward), since a path-less issue would make
 * valibot skip the rules after it.
 */
const ENVIRONMENT = v.pipe(
  v.object({
    PORT: integer('PORT', 8080, 1, 65535),
    LABLINK_HOLD_SECONDS: integer('LABLINK_HOLD_SECONDS', DEFAULT_HOLD_SECONDS, 1, MAX_HOLD_SECONDS),
    LABLINK_ALIVE_GRACE_SECONDS: integer('LABLINK_ALIVE_GRACE_SECONDS', 20, 1, 3600),
    LABLINK_STALE_SECONDS: integer('LABLINK_STALE_SECONDS', DEFAULT_REPAIR_POLICY.staleSeconds, 10, 86_400),
    LABLINK_REPAIR_AFTER_SECONDS: integer('LABLINK_REPAIR_AFTER_SECONDS', DEFAULT_REPAIR_POLICY.repairAfterSeconds, 10, 86_400),
    LABLINK_MAX_REBOOTS: integer('LABLINK_MAX_REBOOTS', DEFAULT_REPAIR_POLICY.maxReboots, 0, 20),
    LABLINK_REBOOT_COOLDOWN_SECONDS: integer('LABLINK_REBOOT_COOLDOWN_SECONDS', DEFAULT_REPAIR_POLICY.cooldownSeconds, 0, 86_400),
    LABLINK_WARM_VMS: v.optional(wholeNumber('LABLINK_WARM_VMS', 0, 1000)),
    LABLINK_SPARES_GROUP: text,
    LABLINK_MAX_REPLACEMENTS: integer('LABLINK_MAX_REPLACEMENTS', 2, 0, 20),
    LABLINK_VM_NAME_PREFIX: v.optional(
      v.pipe(v.string(), v.regex(HOSTNAME_PATTERN, 'LABLINK_VM_NAME_PREFIX must be letters, digits, dots and dashes.')),
    ),
    LABLINK_VM_COUNT: v.optional(wholeNumber('LABLINK_VM_COUNT', 0, 1000)),
    LABLINK_FLEET_TOKEN: v.optional(v.pipe(v.string(), v.minLength(16, 'LABLINK_FLEET_TOKEN must be at least 16 characters.'))),
    LABLINK_IDENTITY_MODE: v.optional(v.picklist(['token', 'ec2'], 'LABLINK_IDENTITY_MODE must be "token" or "ec2".'), 'token'),
    AWS_REGION: text,
    AWS_DEFAULT_REGION: text,
    LABLINK_FLEET_NAME: text,
    LABLINK_AWS_ACCOUNT: text,
    LABLINK_DATABASE_URL: text,
    PGHOST: text,
    LABLINK_DATABASE_CA_FILE: text,
    LABLINK_LOG_FORMAT: text,
  }),
  v.forward(
    v.partialCheck(
      [['LABLINK_IDENTITY_MODE'], ['LABLINK_FLEET_TOKEN']],
      (env) => env.LABLINK_IDENTITY_MODE !== 'token' || env.LABLINK_FLEET_TOKEN !== undefined,
      'LABLINK_FLEET_TOKEN must be set (at least 16 characters).',
    ),
    ['LABLINK_FLEET_TOKEN'],
  ),
  v.forward(
    v.partialCheck(
      [['LABLINK_IDENTITY_MODE'], ['AWS_REGION'], ['AWS_DEFAULT_REGION']],
      (env) => env.LABLINK_IDENTITY_MODE !== 'ec2' || (env.AWS_REGION ?? env.AWS_DEFAULT_REGION) !== undefined,
      'AWS_REGION must be set for LABLINK_IDENTITY_MODE=ec2.',
    ),
    ['AWS_REGION'],
  ),
  v.forward(
    v.partialCheck(
      [['LABLINK_IDENTITY_MODE'], ['LABLINK_FLEET_NAME']],
      (env) => env.LABLINK_IDENTITY_MODE !== 'ec2' || env.LABLINK_FLEET_NAME !== undefined,
      'LABLINK_FLEET_NAME must name the fleet for LABLINK_IDENTITY_MODE=ec2.',
    ),
    ['LABLINK_FLEET_NAME'],
  ),
  v.forward(
    v.partialCheck(
      [['LABLINK_IDENTITY_MODE'], ['LABLINK_SPARES_GROUP']],
      (env) => env.LABLINK_SPARES_GROUP === undefined || env.LABLINK_IDENTITY_MODE === 'ec2',
      'LABLINK_SPARES_GROUP needs LABLINK_IDENTITY_MODE=ec2: spares prove who they are with the EC2 identity document.',
    ),
    ['LABLINK_SPARES_GROUP'],
  ),
  v.forward(
    v.partialCheck(
      [['LABLINK_DATABASE_URL'], ['PGHOST']],
      (env) => env.LABLINK_DATABASE_URL !== undefined || env.PGHOST !== undefined,
      'Set LABLINK_DATABASE_URL, or PGHOST with PGUSER, PGPASSWORD and PGDATABASE.',
    ),
    ['LABLINK_DATABASE_URL'],
  ),
  v.forward(
    v.partialCheck(
      [['LABLINK_DATABASE_CA_FILE']],
      (env) => env.LABLINK_DATABASE_CA_FILE === undefined || canRead(env.LABLINK_DATABASE_CA_FILE),
      (issue) => `LABLINK_DATABASE_CA_FILE (${issue.input.LABLINK_DATABASE_CA_FILE}) cannot be read.`,
    ),
    ['LABLINK_DATABASE_CA_FILE'],
  ),
  v.transform((env): AllocatorConfig => ({
    port: env.PORT,
    holdSeconds: env.LABLINK_HOLD_SECONDS,
    aliveGraceSeconds: env.LABLINK_ALIVE_GRACE_SECONDS,
    // The checks above ensure what each mode needs is set.
    identity:
      env.LABLINK_IDENTITY_MODE === 'token'
        ? { mode: 'token', fleetToken: env.LABLINK_FLEET_TOKEN! }
        : {
            mode: 'ec2',
            region: (env.AWS_REGION ?? env.AWS_DEFAULT_REGION)!,
            fleet: env.LABLINK_FLEET_NAME!,
            accountId: env.LABLINK_AWS_ACCOUNT,
            fleetToken: env.LABLINK_FLEET_TOKEN,
          },
    repairPolicy: {
      staleSeconds: env.LABLINK_STALE_SECONDS,
      repairAfterSeconds: env.LABLINK_REPAIR_AFTER_SECONDS,
      maxReboots: env.LABLINK_MAX_REBOOTS,
      cooldownSeconds: env.LABLINK_REBOOT_COOLDOWN_SECONDS,
    },
    ...(env.LABLINK_WARM_VMS !== undefined ? { warmVms: env.LABLINK_WARM_VMS } : {}),
    ...(env.LABLINK_SPARES_GROUP !== undefined
      ? {
          spares: {
            groupName: env.LABLINK_SPARES_GROUP,
            maxReplacements: env.LABLINK_MAX_REPLACEMENTS,
            ...(env.LABLINK_VM_NAME_PREFIX !== undefined && env.LABLINK_VM_COUNT !== undefined
              ? { names: { prefix: env.LABLINK_VM_NAME_PREFIX, vmCount: env.LABLINK_VM_COUNT } }
              : {}),
          },
        }
      : {}),
    database: {
      ...(env.LABLINK_DATABASE_URL ? { connectionString: env.LABLINK_DATABASE_URL } : {}),
      ...(env.LABLINK_DATABASE_CA_FILE
        ? { ssl: { ca: readFileSync(env.LABLINK_DATABASE_CA_FILE, 'utf8'), rejectUnauthorized: true } }
        : {}),
    },
    logFormat: env.LABLINK_LOG_FORMAT === 'text' ? 'text' : 'json',
  })),
);

/**
 * The Fargate allocator's environment, read once. The database is either
 * LABLINK_DATABASE_URL or the standard PG* variables (ECS injects the password from
 * Secrets Manager); LABLINK_DATABASE_CA_FILE turns on verified TLS with that CA bundle.
 */
export function readAllocatorConfig(env: NodeJS.ProcessEnv): AllocatorConfig {
  // An empty variable counts as unset, as a shell's `NAME=` means.
  const checked = checkAll(ENVIRONMENT, Object.fromEntries(Object.entries(env).filter(([, value]) => value !== '')));
  if (!checked.ok) throw new Error(`Allocator configuration: ${checked.messages.join(' ')}`);
  return checked.value;
}
