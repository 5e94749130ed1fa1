import { HourlyPrice, Pricing, estimatedCost, hourlyPrice } from './cost';
import { Sql } from './sql';
import { SELECT_PARTICIPANT_REPORT } from './statements';

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

/** "After the workshop": per participant how long they waited for what, and what their VM time cost. */
export async function workshopReport(sql: Sql, pricing: Pricing): Promise<WorkshopReport> {
  const price = hourlyPrice(pricing);
  const rows = await sql.query<Row>(SELECT_PARTICIPANT_REPORT);
  const participants = rows.map((row) => ({ ...row, vm_hours: Math.round(row.vm_hours * 1000) / 1000, estimated_cost_usd: estimatedCost(row.vm_hours, price) }));
  const vmHours = rows.reduce((sum, row) => sum + row.vm_hours, 0);
  return {
    generatedAt: new Date().toISOString(),
    price,
    participants,
    totals: { participants: participants.length, vmHours: Math.round(vmHours * 1000) / 1000, estimatedCostUsd: estimatedCost(vmHours, price) },
  };
}
