import { generatePin } from './pin';
import { Sql } from './sql';
import { markConnected } from './idle-release';
import * as statements from './statements';

export type GpuStatus = 'ok' | 'failed' | 'n/a';
export const GPU_STATUSES: readonly GpuStatus[] = ['ok', 'failed', 'n/a'];

/** What an agent reports; each part is optional, sent on its own schedule or when it changes. */
export interface HealthReport {
  /** The agent sends every field; LabLink's own client only some (see allocator/lablink-client-routes.ts). */
  heartbeat?: { bootId?: string; uptimeSeconds?: number; crdRunning?: boolean; diskFreeMb?: number };
  gpu?: { status: GpuStatus; detail?: string };
  inUse?: boolean;
}

/**
 * Stores a report; undefined when no VM has that name. `rejoined`: a new boot brought back a VM
 * that was out of the pool only because it cannot reset itself.
 */
export async function recordHealth(sql: Sql, hostname: string, report: HealthReport): Promise<{ rejoined: boolean } | undefined> {
  const [row] = await sql.query<{ rejoined: boolean }>(statements.RECORD_HEALTH, {
    hostname,
    heartbeat: report.heartbeat !== undefined,
    bootId: report.heartbeat?.bootId ?? null,
    uptimeSeconds: report.heartbeat?.uptimeSeconds === undefined ? null : Math.round(report.heartbeat.uptimeSeconds),
    crdRunning: report.heartbeat?.crdRunning ?? null,
    diskFreeMb: report.heartbeat?.diskFreeMb === undefined ? null : Math.round(report.heartbeat.diskFreeMb),
    gpuStatus: report.gpu?.status ?? null,
    gpuDetail: report.gpu?.detail ?? null,
    inUse: report.inUse ?? null,
  });
  if (row && report.inUse === true) await markConnected(sql, hostname);
  return row && { rejoined: row.rejoined };
}

export interface RepairPolicy {
  /** No heartbeat for this long: stale. */
  staleSeconds: number;
  /** Unhealthy for this long: reboot (or, after the last reboot, fail). */
  repairAfterSeconds: number;
  maxReboots: number;
  /** At least this long between two reboots of one VM. */
  cooldownSeconds: number;
}

export const DEFAULT_REPAIR_POLICY: RepairPolicy = { staleSeconds: 90, repairAfterSeconds: 300, maxReboots: 2, cooldownSeconds: 600 };

export async function trackUnhealthy(sql: Sql, policy: RepairPolicy): Promise<{ hostname: string; unhealthy: boolean }[]> {
  return sql.query(statements.TRACK_UNHEALTHY, { staleSeconds: policy.staleSeconds, cooldownSeconds: policy.cooldownSeconds });
}

export async function claimReboots(sql: Sql, policy: RepairPolicy): Promise<{ hostname: string; instance_id: string; reboot_count: number; spare: boolean }[]> {
  return sql.query(statements.CLAIM_REBOOTS, {
    staleSeconds: policy.staleSeconds,
    repairAfterSeconds: policy.repairAfterSeconds,
    maxReboots: policy.maxReboots,
    cooldownSeconds: policy.cooldownSeconds,
  });
}

export async function markFailed(sql: Sql, policy: RepairPolicy): Promise<{ hostname: string; email: string | null; failure: string }[]> {
  return sql.query(statements.MARK_FAILED, { staleSeconds: policy.staleSeconds, repairAfterSeconds: policy.repairAfterSeconds, maxReboots: policy.maxReboots });
}

export type MoveResult = { kind: 'moved'; hostname: string; email: string } | { kind: 'no_participant' } | { kind: 'no_vm_free' };

/** Moves the participant of `hostname` to a free healthy VM with a fresh PIN. */
export async function moveParticipant(sql: Sql, hostname: string): Promise<MoveResult> {
  const [row] = await sql.query<{ hostname: string; email: string }>(statements.MOVE_PARTICIPANT, { hostname, pin: generatePin() });
  if (row) return { kind: 'moved', hostname: row.hostname, email: row.email };
  const [vm] = await sql.query<{ email: string | null }>(statements.SELECT_VM_EMAIL, { hostname });
  return vm?.email ? { kind: 'no_vm_free' } : { kind: 'no_participant' };
}

export async function retireVm(sql: Sql, hostname: string): Promise<void> {
  await sql.query(statements.RETIRE_VM, { hostname });
}

export interface FleetCounts {
  total: number;
  free: number;
  assigned: number;
  stale: number;
  /** Went silent within the last half hour: a sudden drop, unlike VMs long gone. */
  newly_stale: number;
  unhealthy: number;
  failed: number;
}

export async function fleetCounts(sql: Sql, staleSeconds: number): Promise<FleetCounts> {
  const [row] = await sql.query<FleetCounts>(statements.FLEET_COUNTS, { staleSeconds });
  return row;
}
