import { createHash } from 'node:crypto';
import { generateSecret } from './secrets';
import { Sql } from './sql';
import { CREATE_HANDOVER_LINK, SELECT_HANDOVER_LINK, USE_HANDOVER_LINK } from './statements';

/** Long enough to send the link and open it; short enough that a forgotten one is soon worthless. */
export const HANDOVER_VALID_SECONDS = 30 * 60;

/** What generateSecret() makes: 32 URL-safe characters. */
export const HANDOVER_TOKEN_PATTERN = /^[A-Za-z0-9_-]{32}$/;

/** Only the hash is stored: the database (or a backup of it) does not hold working links. */
function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export type HandoverLink = { kind: 'created'; token: string; email: string; expiresAt: string } | { kind: 'no_participant' };

/** A single-use link that hands the participant's assignment on :hostname to whichever browser opens it. */
export async function createHandoverLink(sql: Sql, hostname: string, validSeconds = HANDOVER_VALID_SECONDS): Promise<HandoverLink> {
  const token = generateSecret();
  const [row] = await sql.query<{ email: string; expires_at: string }>(CREATE_HANDOVER_LINK, { hostname, tokenHash: tokenHash(token), validSeconds });
  return row ? { kind: 'created', token, email: row.email, expiresAt: row.expires_at } : { kind: 'no_participant' };
}

export type HandoverRefusal = 'unknown' | 'used' | 'expired' | 'ended';
export type HandoverState = { kind: 'open'; hostname: string } | { kind: HandoverRefusal };

/** Whether a link would work now, without using it (its page asks before it binds). */
export async function handoverLinkState(sql: Sql, token: string): Promise<HandoverState> {
  if (!HANDOVER_TOKEN_PATTERN.test(token)) return { kind: 'unknown' };
  const [row] = await sql.query<{ hostname: string; used: boolean; expired: boolean; current: boolean }>(SELECT_HANDOVER_LINK, { tokenHash: tokenHash(token) });
  if (!row) return { kind: 'unknown' };
  if (row.used) return { kind: 'used' };
  if (row.expired) return { kind: 'expired' };
  if (!row.current) return { kind: 'ended' };
  return { kind: 'open', hostname: row.hostname };
}

export type HandoverUse = { kind: 'bound'; hostname: string; assignmentId: string; retryToken: string } | { kind: HandoverRefusal };

/** Uses the link once: the opening browser gets a new retry token, and the old browser's stops working. */
export async function useHandoverLink(sql: Sql, token: string): Promise<HandoverUse> {
  if (!HANDOVER_TOKEN_PATTERN.test(token)) return { kind: 'unknown' };
  const retryToken = generateSecret();
  const [row] = await sql.query<{ hostname: string; assignment_id: string }>(USE_HANDOVER_LINK, { tokenHash: tokenHash(token), retryToken });
  if (row) return { kind: 'bound', hostname: row.hostname, assignmentId: row.assignment_id, retryToken };
  const state = await handoverLinkState(sql, token);
  // Opened by another browser between the two statements: that one won.
  return state.kind === 'open' ? { kind: 'used' } : state;
}
