import * as v from 'valibot';
import {
  LOG_CONTROL_CHARACTERS,
  MAX_LOG_LINE_LENGTH,
  MAX_STATUS_MESSAGE_LENGTH,
  SETUP_FAILURE_PREFIX,
  MAX_LOG_LINES_PER_BATCH,
  STEP_PATTERN,
  VM_LOG_LEVELS,
  VM_LOG_SOURCES,
  VmLogLine,
} from '../contract/wire';
import { check, exactObject } from '../core/validate';

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const AT_MESSAGE = ': "at" must be an ISO 8601 time such as 2026-12-01T10:00:00Z.';
const SETUP_FAILURE_MESSAGE = `"setupFailure" must be null or one line starting "${SETUP_FAILURE_PREFIX}", at most ${MAX_STATUS_MESSAGE_LENGTH} characters.`;
const STEP_MESSAGE = '"step" must be a short name: a lowercase letter, then lowercase letters, digits or dashes, at most 40 in all.';
/** A search, not `v.regex`: the pattern is global (it also replaces), and a global regex's `test` keeps state between calls. */
const oneLine = <M extends string>(message: M) => v.check((text: string) => text.search(LOG_CONTROL_CHARACTERS) < 0, message);

/** One log line; its messages follow "Line <number>", which only the batch knows. */
const LOG_LINE = exactObject(
  {
    at: v.pipe(
      v.string(AT_MESSAGE),
      v.regex(ISO_TIME, AT_MESSAGE),
      v.check((at) => !Number.isNaN(Date.parse(at)), AT_MESSAGE),
      v.transform((at) => new Date(at).toISOString()),
    ),
    level: v.picklist(VM_LOG_LEVELS, ': "level" must be "info", "warn" or "error".'),
    source: v.picklist(VM_LOG_SOURCES, ': "source" must be "boot", "agent" or "setup".'),
    text: v.pipe(
      v.string(': "text" must be a string.'),
      v.maxLength(
        MAX_LOG_LINE_LENGTH,
        (issue) =>
          ` has ${issue.input.length} characters; at most ${MAX_LOG_LINE_LENGTH} are allowed. Long lines are refused, not cut: cut them before sending.`,
      ),
      oneLine(' contains a control character (such as NUL, a line break or an escape); send one line of plain text.'),
    ),
  },
  {
    notObject: ' must be an object {"at","level","source","text"}.',
    unexpected: (fields) => ` has unexpected field(s): ${fields.join(', ')}.`,
  },
);

/** The `step`, `lines` and `setupFailure` of a `/vm_logs` body, checked in that order; one bad line refuses the whole batch. */
export const LOG_BATCH_FIELDS = {
  setupFailure: v.optional(
    v.nullable(
      v.pipe(
        v.string(SETUP_FAILURE_MESSAGE),
        v.startsWith(SETUP_FAILURE_PREFIX, SETUP_FAILURE_MESSAGE),
        v.maxLength(MAX_STATUS_MESSAGE_LENGTH, SETUP_FAILURE_MESSAGE),
        oneLine(SETUP_FAILURE_MESSAGE),
      ),
    ),
  ),
  step: v.optional(v.pipe(v.string(STEP_MESSAGE), v.regex(STEP_PATTERN, STEP_MESSAGE))),
  lines: v.pipe(
    v.array(v.unknown(), 'Send "lines": a list of log lines (it may be empty).'),
    v.maxLength(
      MAX_LOG_LINES_PER_BATCH,
      (issue) => `Send at most ${MAX_LOG_LINES_PER_BATCH} lines per request; this one has ${issue.input.length}.`,
    ),
    // Line by line, so the refusal names the first bad line by its number.
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const lines: VmLogLine[] = [];
      for (const [index, value] of dataset.value.entries()) {
        const line = check(LOG_LINE, value);
        if (!line.ok) {
          addIssue({ message: `Line ${index + 1}${line.message}` });
          return NEVER;
        }
        lines.push(line.value);
      }
      return lines;
    }),
  ),
};
