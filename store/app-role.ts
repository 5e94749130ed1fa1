import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { generateSecret } from '../core/secrets';
import { Sql } from './sql';

/**
 * The database role the allocator and the Lambdas connect as: it may read and write the rows
 * and nothing else. Migrations run as the database's owner, which then calls `ensureAppRole`.
 */
export const APP_ROLE_NAME = 'lablink_app';

export interface AppRole {
  name: string;
  password: string;
}

/** A lower-case identifier means the same quoted or not, so it can stand in SQL as `"name"`. */
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** Printable ASCII only: PostgreSQL normalises other characters (SASLprep) before hashing, the verifier below does not. */
const PASSWORD = /^[\x21-\x7e]{16,128}$/;

/** The app role with a fresh random password: local mode makes one per run. */
export function newAppRole(name = APP_ROLE_NAME): AppRole {
  return { name, password: generateSecret() };
}

/** A pg connection URL for the same server and database, as `role`. */
export function urlAs(url: string, role: AppRole): string {
  const asRole = new URL(url);
  asRole.username = role.name;
  asRole.password = encodeURIComponent(role.password);
  return asRole.toString();
}

export interface ScramVerifier {
  iterations: number;
  salt: string;
  storedKey: string;
  serverKey: string;
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL would store for `password` (RFC 5802/7677, as psql's
 * \password computes it): the role's password is set from this, so the password itself never
 * reaches the server, its statement logs or its error reports. The Data API signs in only with
 * SCRAM passwords, which this is whatever the server's password_encryption says.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): ScramVerifier {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    iterations,
    salt: salt.toString('base64'),
    storedKey: createHash('sha256').update(clientKey).digest('base64'),
    serverKey: createHmac('sha256', salted).update('Server Key').digest('base64'),
  };
}

/**
 * Creates the role if missing, sets its password (so each run rotates it), and grants it the
 * DML on every table and nothing more: no CREATE on the schema, no TRUNCATE, no ownership, so
 * it cannot change the schema. One statement, because the Data API runs one at a time and the
 * role is then never half set up; the advisory lock serialises runs that start together (two
 * local stacks on one database), which would otherwise race on the same catalog rows.
 * The verifier is assembled by format() because a literal `…=:abc` would read as a parameter.
 */
export function appRoleStatement(name: string, verifier: ScramVerifier): string {
  if (!ROLE_NAME.test(name)) throw new Error(`The app role's name must be a lower-case SQL identifier, not "${name}".`);
  const role = `"${name}"`;
  return `DO $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('lablink app role'));
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${name}') THEN
    CREATE ROLE ${role} LOGIN;
  END IF;
  EXECUTE format('ALTER ROLE %I WITH LOGIN PASSWORD %L', '${name}',
    format('SCRAM-SHA-256$%s:%s$%s:%s', ${verifier.iterations}, '${verifier.salt}', '${verifier.storedKey}', '${verifier.serverKey}'));
  -- Only the owner creates objects in the schema (PostgreSQL before 15 let everyone).
  REVOKE CREATE ON SCHEMA public FROM PUBLIC;
  GRANT USAGE ON SCHEMA public TO ${role};
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};
  -- Migration bookkeeping is the owner's: the app could otherwise mark a migration as applied.
  REVOKE ALL ON schema_migrations FROM ${role};
  GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role};
  GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO ${role};
  -- Tables the owner creates later are the app's at once, before this statement runs again.
  ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role};
  ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${role};
  ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO ${role};
END
$$`;
}

/** Run as the owner after `migrate`; idempotent. Never logs or sends the password. */
export async function ensureAppRole(sql: Sql, role: AppRole): Promise<void> {
  if (!PASSWORD.test(role.password))
    throw new Error("The app role's password must be 16 to 128 printable ASCII characters without spaces.");
  await sql.query(appRoleStatement(role.name, scramVerifier(role.password)));
}
