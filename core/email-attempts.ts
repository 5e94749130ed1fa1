import { Sql } from './sql';
import { RECORD_EMAIL_ATTEMPT, SELECT_EMAIL_ATTEMPTS } from './statements';

export interface EmailAttempt {
  attempted_at: string;
  email: string;
  hostname: string;
  /** The email still has that VM: the instructor can hand it to the asking browser. */
  still_assigned: boolean;
}

/** Someone asked with an email whose VM another browser holds: the instructor sees it on the dashboard. */
export async function recordEmailAttempt(sql: Sql, email: string, hostname: string): Promise<void> {
  await sql.query(RECORD_EMAIL_ATTEMPT, { email, hostname });
}

export async function listEmailAttempts(sql: Sql, limit = 50): Promise<EmailAttempt[]> {
  return sql.query<EmailAttempt>(SELECT_EMAIL_ATTEMPTS, { limit });
}
