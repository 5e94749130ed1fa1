import { Sql } from './sql';

export interface EmailAttempt {
  attempted_at: string;
  email: string;
  hostname: string;
  /** The email still has that VM: the instructor can hand it to the asking browser. */
  still_assigned: boolean;
}

/** Someone asked with an email whose VM another browser holds: kept for the dashboard, the newest 500 only. */
const RECORD_EMAIL_ATTEMPT = `
WITH added AS (
  INSERT INTO email_attempts (email, hostname) VALUES (:email, :hostname) RETURNING id
)
DELETE FROM email_attempts WHERE id <= (SELECT id FROM added) - 500`;

/** Someone asked with an email whose VM another browser holds: the instructor sees it on the dashboard. */
export async function recordEmailAttempt(sql: Sql, email: string, hostname: string): Promise<void> {
  await sql.query(RECORD_EMAIL_ATTEMPT, { email, hostname });
}

/** The newest attempts, and whether that email still has that VM (so it can be handed over). */
const SELECT_EMAIL_ATTEMPTS = `
SELECT a.attempted_at, a.email, a.hostname, EXISTS (SELECT 1 FROM vms WHERE vms.hostname = a.hostname AND vms.email = a.email) AS still_assigned
FROM email_attempts a ORDER BY a.id DESC LIMIT CAST(:limit AS int)`;

export async function listEmailAttempts(sql: Sql, limit = 50): Promise<EmailAttempt[]> {
  return sql.query<EmailAttempt>(SELECT_EMAIL_ATTEMPTS, { limit });
}
