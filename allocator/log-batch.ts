import type { LogLevel } from '../core/log';
import {
  LOG_CONTROL_CHARACTERS,
  MAX_LOG_LINE_LENGTH,
  MAX_STATUS_MESSAGE_LENGTH,
  SETUP_FAILURE_PREFIX,
  MAX_LOG_LINES_PER_BATCH,
  STEP_PATTERN,
  VM_LOG_LEVELS,
  VM_LOG_SOURCES,
  VmLogBatch,
  VmLogLine,
  VmLogSource,
} from '../core/wire';
import { unexpectedFields } from '../http/json-body';

type Parsed = { ok: true; batch: Omit<VmLogBatch, 'hostname'> } | { ok: false; message: string };

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

function parseLine(value: unknown, number: number): VmLogLine | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `Line ${number} must be an object {"at","level","source","text"}.`;
  const line = value as Record<string, unknown>;
  const extra = unexpectedFields(line, ['at', 'level', 'source', 'text']);
  if (extra.length > 0) return `Line ${number} has unexpected field(s): ${extra.join(', ')}.`;
  const { at, level, source, text } = line;
  if (typeof at !== 'string' || !ISO_TIME.test(at) || Number.isNaN(Date.parse(at))) return `Line ${number}: "at" must be an ISO 8601 time such as 2026-12-01T10:00:00Z.`;
  if (!VM_LOG_LEVELS.includes(level as LogLevel)) return `Line ${number}: "level" must be "info", "warn" or "error".`;
  if (!VM_LOG_SOURCES.includes(source as VmLogSource)) return `Line ${number}: "source" must be "boot", "agent" or "setup".`;
  if (typeof text !== 'string') return `Line ${number}: "text" must be a string.`;
  if (text.length > MAX_LOG_LINE_LENGTH) {
    return `Line ${number} has ${text.length} characters; at most ${MAX_LOG_LINE_LENGTH} are allowed. Long lines are refused, not cut: cut them before sending.`;
  }
  if (text.search(LOG_CONTROL_CHARACTERS) >= 0) return `Line ${number} contains a control character (such as NUL, a line break or an escape); send one line of plain text.`;
  return { at: new Date(at).toISOString(), level: level as LogLevel, source: source as VmLogSource, text };
}

function badSetupFailure(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !value.startsWith(SETUP_FAILURE_PREFIX) || value.length > MAX_STATUS_MESSAGE_LENGTH || value.search(LOG_CONTROL_CHARACTERS) >= 0) {
    return `"setupFailure" must be null or one line starting "${SETUP_FAILURE_PREFIX}", at most ${MAX_STATUS_MESSAGE_LENGTH} characters.`;
  }
  return undefined;
}

/** Validates the `step`, `lines` and `setupFailure` of a `/vm_logs` body; one bad line refuses the whole batch. */
export function parseLogBatch(body: Record<string, unknown>): Parsed {
  const { step, lines, setupFailure } = body;
  const failureProblem = badSetupFailure(setupFailure);
  if (failureProblem) return { ok: false, message: failureProblem };
  if (step !== undefined && (typeof step !== 'string' || !STEP_PATTERN.test(step))) {
    return { ok: false, message: '"step" must be a short name: a lowercase letter, then lowercase letters, digits or dashes, at most 40 in all.' };
  }
  if (!Array.isArray(lines)) return { ok: false, message: 'Send "lines": a list of log lines (it may be empty).' };
  if (lines.length > MAX_LOG_LINES_PER_BATCH) return { ok: false, message: `Send at most ${MAX_LOG_LINES_PER_BATCH} lines per request; this one has ${lines.length}.` };
  const parsed: VmLogLine[] = [];
  for (const [index, value] of lines.entries()) {
    const line = parseLine(value, index + 1);
    if (typeof line === 'string') return { ok: false, message: line };
    parsed.push(line);
  }
  return {
    ok: true,
    batch: { ...(step !== undefined ? { step } : {}), lines: parsed, ...(setupFailure !== undefined ? { setupFailure: setupFailure as string | null } : {}) },
  };
}
