import { LogLevel, visibleLine } from './log';
import { Sql } from './sql';
import * as statements from './statements';
import { recordPoll } from './vms';
import { KEPT_FIRST_LOG_LINES_PER_VM, KEPT_LOG_LINES_PER_VM, SETUP_FAILURE_PREFIX, VmLogBatch, VmLogLine } from './wire';

/**
 * Stores some of a VM's log lines and its current step, keeping KEPT_LOG_LINES_PER_VM lines (its
 * first KEPT_FIRST_LOG_LINES_PER_VM, the boot, and the newest), and the outcome of its setup when the batch carries one. Boot logs arrive before the
 * first poll, so the batch registers the VM the way a poll does, but without counting it free:
 * only a poll says the agent waits for a participant.
 */
export async function recordVmLogs(
  sql: Sql,
  hostname: string,
  batch: Omit<VmLogBatch, 'hostname'>,
  instanceId: string | null = null,
): Promise<{ registered: boolean }> {
  const { registered } = await recordPoll(sql, hostname, 0, instanceId);
  await storeLines(sql, hostname, batch.step ?? null, batch.lines);
  if (batch.setupFailure !== undefined) {
    await sql.query(statements.RECORD_SETUP_FAILURE, { hostname, failure: batch.setupFailure, prefix: SETUP_FAILURE_PREFIX });
  }
  return { registered };
}

/** Stores lines of a VM that must be known already (LabLink's log routes); false, changing nothing, for an unknown name. */
export async function recordKnownVmLogs(sql: Sql, hostname: string, lines: VmLogLine[]): Promise<boolean> {
  const [vm] = await sql.query(statements.SELECT_VM_STEP, { hostname });
  if (!vm) return false;
  await storeLines(sql, hostname, null, lines);
  return true;
}

async function storeLines(sql: Sql, hostname: string, step: string | null, lines: VmLogLine[]): Promise<void> {
  const visible = lines.map((line) => ({ ...line, text: visibleLine(line.text) }));
  await sql.query(statements.RECORD_VM_LOGS, { hostname, step, lines: JSON.stringify(visible), keep: KEPT_LOG_LINES_PER_VM, keepFirst: KEPT_FIRST_LOG_LINES_PER_VM });
}

export interface VmLogView {
  hostname: string;
  step: string | null;
  stepAt: string | null;
  /** In the order they arrived, oldest first. */
  lines: VmLogLine[];
}

/** A VM's step and stored lines (only those of `level` when given); undefined when no VM has that name. */
export async function readVmLogs(sql: Sql, hostname: string, level?: LogLevel): Promise<VmLogView | undefined> {
  const [vm] = await sql.query<{ step: string | null; step_at: string | null }>(statements.SELECT_VM_STEP, { hostname });
  if (!vm) return undefined;
  const lines = await sql.query<VmLogLine>(statements.SELECT_VM_LOG_LINES, { hostname, level: level ?? null });
  return { hostname, step: vm.step, stepAt: vm.step_at, lines };
}
