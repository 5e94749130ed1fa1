import { Sql } from './sql';

/**
 * How many NEW VMs one client address may take per window. A whole room behind one NAT shares
 * an address, so the default lets 90 people in within 10 minutes (a 60-seat room with room to
 * spare) while a stranger's script cannot drain a fleet of hundreds.
 */
export interface AddressLimit {
  vms: number;
  windowSeconds: number;
}

export const DEFAULT_ADDRESS_LIMIT: AddressLimit = { vms: 90, windowSeconds: 600 };

/**
 * Takes one of the address's grants for the current window, if any is left, in one atomic
 * upsert: every Lambda container and server shares the count. Old windows are swept on the way.
 */
export const TAKE_ADDRESS_GRANT = `
WITH win AS (
  SELECT date_bin(make_interval(secs => CAST(:windowSeconds AS float8)), now(), timestamptz '2000-01-01') AS start
), swept AS (
  DELETE FROM address_grants WHERE window_start < (SELECT start FROM win)
), taken AS (
  INSERT INTO address_grants (address, window_start, granted)
  SELECT :address, start, 1 FROM win
  ON CONFLICT (address, window_start) DO UPDATE SET granted = address_grants.granted + 1
  WHERE address_grants.granted < CAST(:limit AS integer)
  RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM taken) AS granted, to_char(start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS window_start,
  ceil(extract(epoch FROM start + make_interval(secs => CAST(:windowSeconds AS float8)) - now()))::int AS retry_after_seconds
FROM win`;

/** Gives an unused grant back (the request found its own VM, or none was free): nothing stays stored for it. */
export const GIVE_BACK_ADDRESS_GRANT = `
WITH lowered AS (
  UPDATE address_grants SET granted = granted - 1
  WHERE address = :address AND window_start = CAST(:windowStart AS timestamptz) AND granted > 1
  RETURNING 1
)
DELETE FROM address_grants
WHERE address = :address AND window_start = CAST(:windowStart AS timestamptz) AND granted <= 1 AND NOT EXISTS (SELECT 1 FROM lowered)`;

/** The VM a browser's retry token already holds under another email, if any. */
export const SELECT_BROWSER_HOLDING = `
SELECT hostname, assignment_id::text AS assignment_id FROM vms
WHERE retry_token = :retryToken AND email IS NOT NULL AND email <> :email`;

export type AddressGrant = { granted: true; address: string; windowStart: string } | { granted: false; retryAfterSeconds: number };

export async function takeAddressGrant(sql: Sql, address: string, limit: AddressLimit): Promise<AddressGrant> {
  const [row] = await sql.query<{ granted: boolean; window_start: string; retry_after_seconds: number }>(TAKE_ADDRESS_GRANT, {
    address,
    windowSeconds: limit.windowSeconds,
    limit: limit.vms,
  });
  if (row.granted) return { granted: true, address, windowStart: row.window_start };
  return { granted: false, retryAfterSeconds: Math.max(1, row.retry_after_seconds) };
}

export async function giveBackAddressGrant(sql: Sql, grant: { address: string; windowStart: string }): Promise<void> {
  await sql.query(GIVE_BACK_ADDRESS_GRANT, { address: grant.address, windowStart: grant.windowStart });
}

/** One VM per browser: the VM this browser holds for another email, which it may not add to. */
export async function vmHeldByBrowser(
  sql: Sql,
  retryToken: string,
  email: string,
): Promise<{ hostname: string; assignmentId: string } | undefined> {
  const [row] = await sql.query<{ hostname: string; assignment_id: string }>(SELECT_BROWSER_HOLDING, { retryToken, email });
  return row && { hostname: row.hostname, assignmentId: row.assignment_id };
}
