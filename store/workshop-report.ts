import { PROBE_EMAIL } from '../contract/wire';
import { HourlyPrice, Pricing, estimatedCost, hourlyPrice } from '../core/cost';
import { Sql } from './sql';

/** One participant over every assignment they had (moves and retries included). */
export interface ParticipantReport {
  email: string;
  /** Their VMs in the order they got them, space-separated. */
  vms: string;
  submitted_at: string;
  seconds_to_ready: number | null;
  seconds_to_connect: number | null;
  vm_hours: number;
  /** Null unless they waited in the waiting line. */
  waiting_seconds: number | null;
  failures: number;
  resets: number;
  moves: number;
  estimated_cost_usd: number | null;
}

export interface WorkshopReport {
  generatedAt: string;
  price: HourlyPrice;
  participants: ParticipantReport[];
  totals: { participants: number; vmHours: number; estimatedCostUsd: number | null };
}

type Row = Omit<ParticipantReport, 'estimated_cost_usd'>;

/**
 * The after-workshop report, one row per participant (email) over every assignment they had.
 * Submitting is joining the waiting line when they did (queued_at), else the assignment itself.
 * A reset is one of their assignments that ended: its VM was taken back and reset.
 */
const SELECT_PARTICIPANT_REPORT = `
WITH per AS (
  SELECT email, min(id) AS first_id,
    min(coalesce(queued_at, assigned_at)) AS submitted_at,
    min(ready_at) AS ready_at, min(connected_at) AS connected_at,
    sum(extract(epoch FROM coalesce(ended_at, now()) - assigned_at)) AS vm_seconds,
    sum(extract(epoch FROM assigned_at - queued_at)) AS waiting_seconds,
    sum(failures) AS failures, count(ended_at) AS resets, count(moved_from) AS moves,
    string_agg(hostname, ' ' ORDER BY id) AS vms
  FROM assignment_history WHERE email <> '${PROBE_EMAIL}' GROUP BY email
)
SELECT email, vms, submitted_at,
  CAST(round(extract(epoch FROM ready_at - submitted_at)) AS int) AS seconds_to_ready,
  CAST(round(extract(epoch FROM connected_at - submitted_at)) AS int) AS seconds_to_connect,
  CAST(vm_seconds AS float8) / 3600 AS vm_hours,
  CAST(round(waiting_seconds) AS int) AS waiting_seconds,
  CAST(failures AS int) AS failures, CAST(resets AS int) AS resets, CAST(moves AS int) AS moves
FROM per ORDER BY first_id`;

/** "After the workshop": per participant how long they waited for what, and what their VM time cost. */
export async function workshopReport(sql: Sql, pricing: Pricing): Promise<WorkshopReport> {
  const price = hourlyPrice(pricing);
  const rows = await sql.query<Row>(SELECT_PARTICIPANT_REPORT);
  const participants = rows.map((row) => ({
    ...row,
    vm_hours: Math.round(row.vm_hours * 1000) / 1000,
    estimated_cost_usd: estimatedCost(row.vm_hours, price),
  }));
  const vmHours = rows.reduce((sum, row) => sum + row.vm_hours, 0);
  return {
    generatedAt: new Date().toISOString(),
    price,
    participants,
    totals: {
      participants: participants.length,
      vmHours: Math.round(vmHours * 1000) / 1000,
      estimatedCostUsd: estimatedCost(vmHours, price),
    },
  };
}
