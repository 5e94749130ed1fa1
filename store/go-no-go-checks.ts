import { CheckLine, CheckReport } from '../core/go-no-go';
import { Sql } from './sql';

/** The last check's result as the dashboard shows it. */
export interface LastCheck {
  checkedAt: string;
  go: boolean;
  problems: number;
  lines: CheckLine[];
}

/** A deployment check's result (:lines, a JSON array of its lines); only the last few are kept. */
const RECORD_GO_NO_GO = `
WITH added AS (
  INSERT INTO go_no_go_checks (go, problems, lines) VALUES (:go, :problems, :lines) RETURNING id
)
DELETE FROM go_no_go_checks WHERE id < (SELECT id FROM added) - 20`;

export async function recordCheck(sql: Sql, report: CheckReport): Promise<void> {
  await sql.query(RECORD_GO_NO_GO, { go: report.go, problems: report.problems, lines: JSON.stringify(report.lines) });
}

const SELECT_LAST_GO_NO_GO = `
SELECT checked_at, go, problems, lines FROM go_no_go_checks ORDER BY id DESC LIMIT 1`;

export async function lastCheck(sql: Sql): Promise<LastCheck | undefined> {
  const [row] = await sql.query<{ checked_at: string; go: boolean; problems: number; lines: string }>(SELECT_LAST_GO_NO_GO);
  return row && { checkedAt: row.checked_at, go: row.go, problems: row.problems, lines: JSON.parse(row.lines) as CheckLine[] };
}
