import type { LogLevel } from '../contract/wire';

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

/**
 * One JSON object per event for CloudWatch, a readable line locally. Callers pass
 * only secret-free fields: never a CRD command, a PIN or a token.
 */
export function createLogger(format: 'json' | 'text', write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Logger {
  const emit = (level: LogLevel, event: string, fields: LogFields = {}) => {
    if (format === 'json') {
      // JSON escapes C0 itself; the rest is escaped the same way, so the line stays valid JSON.
      write(JSON.stringify({ time: new Date().toISOString(), level, event, ...fields }).replace(UNSAFE_IN_LOG_LINE, unicodeEscape));
      return;
    }
    const time = new Date().toISOString().slice(11, 19);
    write(`${time} ${level === 'info' ? '' : `${level.toUpperCase()} `}${describeEvent(event, fields)}`);
  };
  return loggerFrom(emit);
}

/** Control characters (C0, DEL, C1), line and paragraph separators, and bidi overrides: what can forge a line or drive a terminal. */
const UNSAFE_IN_LOG_LINE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A field value as it may appear in a readable line. Values come from agents and participants too:
 * every control character is escaped, so a value can neither forge a line nor drive a terminal.
 */
function logValue(value: string | number | boolean | null): string {
  return String(value).replace(UNSAFE_IN_LOG_LINE, (character) => ESCAPES[character] ?? unicodeEscape(character));
}

/**
 * A VM's log line as it is stored and shown: escaped like the allocator's own log values, so it
 * cannot forge another line, reorder text (bidi) or drive a terminal; a tab stays a tab. Idempotent.
 */
export function visibleLine(text: string): string {
  return text.replace(UNSAFE_IN_LOG_LINE, (character) =>
    character === '\t' ? character : (ESCAPES[character] ?? unicodeEscape(character)),
  );
}

function unicodeEscape(character: string): string {
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** An event as one readable line: `event key=value …`. */
function describeEvent(event: string, fields: LogFields = {}): string {
  const details = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${logValue(value as string | number | boolean | null)}`)
    .join(' ');
  return `${event}${details ? ` ${details}` : ''}`;
}

function loggerFrom(emit: (level: LogLevel, event: string, fields?: LogFields) => void): Logger {
  return {
    info: (event, fields) => emit('info', event, fields),
    warn: (event, fields) => emit('warn', event, fields),
    error: (event, fields) => emit('error', event, fields),
  };
}

/** Logs to `log` and hands each event, as one readable line, to `listener` too (the agent ships them). */
export function teeLogger(log: Logger, listener: (level: LogLevel, line: string) => void): Logger {
  return loggerFrom((level, event, fields) => {
    log[level](event, fields);
    listener(level, describeEvent(event, fields));
  });
}

export const silentLogger: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
