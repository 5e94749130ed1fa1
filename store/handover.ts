import { createHash } from 'node:crypto';
import { generateSecret } from '../core/secrets';
import { Sql } from './sql';
/** Long enough to send the link and open it; short enough that a forgotten one is soon worthless. */
export const HANDOVER_VALID_SECONDS = 30 * 60;

/** What generateSecret() makes: 32 URL-safe characters. */
export const HANDOVER_TOKEN_PATTERN = /^[A-Za-z0-9_-]{32}$/;

/** Only the hash is stored: the database (or a backup of it) does not hold working links. */
function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export type HandoverLink = { kind: 'created'; token: string; email: string; expiresAt: string } | { kind: 'no_participant' };

/**
 * A one-time hand-over link for the participant on :hostname (stored as :tokenHash), valid
 * :validSeconds. It replaces the VM's unused links, and old ones are swept; nothing is changed
 * when the VM has no participant.
 */
const CREATE_HANDOVER_LINK = `
WITH vm AS (
  SELECT hostname, email, assignment_id FROM vms
  WHERE hostname = :hostname AND email IS NOT NULL AND assignment_id IS NOT NULL AND state <> 'retired'
), swept AS (
  DELETE FROM handover_links
  WHERE EXISTS (SELECT 1 FROM vm) AND ((hostname = :hostname AND used_at IS NULL) OR expires_at < now() - interval '1 day')
), created AS (
  INSERT INTO handover_links (token_hash, hostname, email, assignment_id, expires_at)
  SELECT :tokenHash, hostname, email, assignment_id, now() + make_interval(secs => CAST(:validSeconds AS float8)) FROM vm
  RETURNING email, expires_at
)
SELECT email, expires_at FROM created`;

/** A single-use link that hands the participant's assignment on :hostname to whichever browser opens it. */
export async function createHandoverLink(sql: Sql, hostname: string, validSeconds = HANDOVER_VALID_SECONDS): Promise<HandoverLink> {
  const token = generateSecret();
  const [row] = await sql.query<{ email: string; expires_at: string }>(CREATE_HANDOVER_LINK, {
    hostname,
    tokenHash: tokenHash(token),
    validSeconds,
  });
  return row ? { kind: 'created', token, email: row.email, expiresAt: row.expires_at } : { kind: 'no_participant' };
}

export type HandoverRefusal = 'unknown' | 'used' | 'expired' | 'ended';
export type HandoverState = { kind: 'open'; hostname: string } | { kind: HandoverRefusal };

/** Why a hand-over link would be refused, if it would: used, expired, or its assignment is over. */
const SELECT_HANDOVER_LINK = `
SELECT h.hostname, h.used_at IS NOT NULL AS used, h.expires_at <= now() AS expired,
  EXISTS (SELECT 1 FROM vms WHERE vms.assignment_id = h.assignment_id AND vms.email = h.email) AS current
FROM handover_links h WHERE h.token_hash = :tokenHash`;

/** Whether a link would work now, without using it (its page asks before it binds). */
export async function handoverLinkState(sql: Sql, token: string): Promise<HandoverState> {
  if (!HANDOVER_TOKEN_PATTERN.test(token)) return { kind: 'unknown' };
  const [row] = await sql.query<{ hostname: string; used: boolean; expired: boolean; current: boolean }>(SELECT_HANDOVER_LINK, {
    tokenHash: tokenHash(token),
  });
  if (!row) return { kind: 'unknown' };
  if (row.used) return { kind: 'used' };
  if (row.expired) return { kind: 'expired' };
  if (!row.current) return { kind: 'ended' };
  return { kind: 'open', hostname: row.hostname };
}

export type HandoverUse = { kind: 'bound'; hostname: string; assignmentId: string; retryToken: string } | { kind: HandoverRefusal };

/**
 * Uses a hand-over link once: marks it used and gives its assignment the new browser's retry
 * token (:retryToken), which the old browser no longer holds. Two browsers at once: the second
 * waits on the link's row, then finds it used.
 */
const USE_HANDOVER_LINK = `
WITH used AS (
  UPDATE handover_links h SET used_at = now()
  FROM vms WHERE h.token_hash = :tokenHash AND h.used_at IS NULL AND h.expires_at > now()
    AND vms.assignment_id = h.assignment_id AND vms.email = h.email
  RETURNING h.assignment_id
), bound AS (
  UPDATE vms SET retry_token = :retryToken FROM used WHERE vms.assignment_id = used.assignment_id
  RETURNING vms.hostname, vms.assignment_id::text AS assignment_id
)
SELECT hostname, assignment_id FROM bound`;

/** Uses the link once: the opening browser gets a new retry token, and the old browser's stops working. */
export async function useHandoverLink(sql: Sql, token: string): Promise<HandoverUse> {
  if (!HANDOVER_TOKEN_PATTERN.test(token)) return { kind: 'unknown' };
  const retryToken = generateSecret();
  const [row] = await sql.query<{ hostname: string; assignment_id: string }>(USE_HANDOVER_LINK, {
    tokenHash: tokenHash(token),
    retryToken,
  });
  if (row) return { kind: 'bound', hostname: row.hostname, assignmentId: row.assignment_id, retryToken };
  const state = await handoverLinkState(sql, token);
  // Opened by another browser between the two statements: that one won.
  return state.kind === 'open' ? { kind: 'used' } : state;
}
