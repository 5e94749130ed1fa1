import {
  KEPT_FIRST_LOG_LINES_PER_VM,
  KEPT_LOG_LINES_PER_VM,
  LogLevel,
  SETUP_FAILURE_PREFIX,
  VmLogBatch,
  VmLogLine,
} from '../contract/wire';
import { visibleLine } from '../core/log';
import { Sql } from './sql';
import { recordPoll } from './vms';

/**
 * The agent's word on the workshop's setup: a reason (:failure) takes the VM out of the pool;
 * null, after a passing re-run, puts it back only if a setup failure (:prefix) was what took it out.
 */
const RECORD_SETUP_FAILURE = `
UPDATE vms SET failed_at = CASE WHEN CAST(:failure AS text) IS NULL THEN NULL ELSE now() END, failure = CAST(:failure AS text)
WHERE hostname = :hostname AND (CAST(:failure AS text) IS NOT NULL OR starts_with(failure, CAST(:prefix AS text)))
RETURNING hostname`;

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
    await sql.query(RECORD_SETUP_FAILURE, { hostname, failure: batch.setupFailure, prefix: SETUP_FAILURE_PREFIX });
  }
  return { registered };
}

const SELECT_VM_STEP = `SELECT step, step_at FROM vms WHERE hostname = :hostname`;

/** Stores lines of a VM that must be known already (LabLink's log routes); false, changing nothing, for an unknown name. */
export async function recordKnownVmLogs(sql: Sql, hostname: string, lines: VmLogLine[]): Promise<boolean> {
  const [vm] = await sql.query(SELECT_VM_STEP, { hostname });
  if (!vm) return false;
  await storeLines(sql, hostname, null, lines);
  return true;
}

/**
 * Stores a batch of a VM's log lines (:lines, a JSON array, which both executors pass as text)
 * and its step, and trims the VM to :keep lines in the same statement: its first :keepFirst (the
 * boot) and the newest. The DELETE sees the rows from before this statement, so it keeps :keep
 * minus the batch's size of them.
 */
const RECORD_VM_LOGS = `
WITH stepped AS (
  UPDATE vms SET step = CAST(:step AS text), step_at = now()
  WHERE hostname = :hostname AND CAST(:step AS text) IS NOT NULL AND step IS DISTINCT FROM CAST(:step AS text)
  RETURNING hostname
), batch AS (
  SELECT line, position FROM jsonb_array_elements(CAST(:lines AS jsonb)) WITH ORDINALITY AS batch(line, position)
), added AS (
  INSERT INTO vm_log_lines (hostname, at, level, source, text)
  SELECT :hostname, CAST(line->>'at' AS timestamptz), line->>'level', line->>'source', line->>'text' FROM batch ORDER BY position
  RETURNING id
), trimmed AS (
  DELETE FROM vm_log_lines WHERE hostname = :hostname AND id NOT IN (
    SELECT id FROM vm_log_lines WHERE hostname = :hostname ORDER BY id DESC
    LIMIT greatest(CAST(:keep AS int) - CAST(:keepFirst AS int) - (SELECT count(*) FROM batch), 0))
  AND id NOT IN (SELECT id FROM vm_log_lines WHERE hostname = :hostname ORDER BY id LIMIT CAST(:keepFirst AS int))
  RETURNING id
)
SELECT (SELECT count(*) FROM added)::int AS added, (SELECT count(*) FROM trimmed)::int AS trimmed`;

async function storeLines(sql: Sql, hostname: string, step: string | null, lines: VmLogLine[]): Promise<void> {
  const visible = lines.map((line) => ({ ...line, text: visibleLine(line.text) }));
  await sql.query(RECORD_VM_LOGS, {
    hostname,
    step,
    lines: JSON.stringify(visible),
    keep: KEPT_LOG_LINES_PER_VM,
    keepFirst: KEPT_FIRST_LOG_LINES_PER_VM,
  });
}

export interface VmLogView {
  hostname: string;
  step: string | null;
  stepAt: string | null;
  /** In the order they arrived, oldest first. */
  lines: VmLogLine[];
}

/** A VM's stored lines in the order they arrived; only one level when :level is set. */
const SELECT_VM_LOG_LINES = `
SELECT at, level, source, text FROM vm_log_lines
WHERE hostname = :hostname AND (CAST(:level AS text) IS NULL OR level = CAST(:level AS text))
ORDER BY id`;

/** A VM's step and stored lines (only those of `level` when given); undefined when no VM has that name. */
export async function readVmLogs(sql: Sql, hostname: string, level?: LogLevel): Promise<VmLogView | undefined> {
  const [vm] = await sql.query<{ step: string | null; step_at: string | null }>(SELECT_VM_STEP, { hostname });
  if (!vm) return undefined;
  const lines = await sql.query<VmLogLine>(SELECT_VM_LOG_LINES, { hostname, level: level ?? null });
  return { hostname, step: vm.step, stepAt: vm.step_at, lines };
}
