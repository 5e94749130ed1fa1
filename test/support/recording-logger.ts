import { LogFields, Logger } from '../../core/log';

export type RecordingLogger = Logger & { events: { event: string; fields?: LogFields }[] };

/** A logger that keeps every event, so a test can assert what was logged. */
export function recordingLogger(): RecordingLogger {
  const events: { event: string; fields?: LogFields }[] = [];
  const record = (event: string, fields?: LogFields) => void events.push({ event, fields });
  return { events, info: record, warn: record, error: record };
}
