export type LogFields = Record<string, string | number | boolean | null | undefined>;
export type LogLevel = 'info' | 'warn' | 'error';

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
      write(JSON.stringify({ time: new Date().toISOString(), level, event, ...fields }));
      return;
    }
    const time = new Date().toISOString().slice(11, 19);
    write(`${time} ${level === 'info' ? '' : `${level.toUpperCase()} `}${describeEvent(event, fields)}`);
  };
  return loggerFrom(emit);
}

/** An event as one readable line: `event key=value …`. */
function describeEvent(event: string, fields: LogFields = {}): string {
  const details = Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${value}`)
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
