import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  LOG_CONTROL_CHARACTERS,
  LogLevel,
  MAX_LOG_LINE_LENGTH,
  MAX_LOG_LINES_PER_BATCH,
  VmLogBatch,
  VmLogLine,
  VmLogSource,
} from '../contract/wire';
import { backoffDelay } from '../core/backoff';
import { errorMessage, Logger } from '../core/log';
import { AllocatorClient } from './allocator-client';
import { WakeUp } from './wake-up';

/** Written in the state directory once the allocator first takes a batch; the boot script waits for it. */
export const REGISTERED_MARKER = 'registered';
/** Lines kept while the allocator is out of reach; beyond it the oldest go first. */
const QUEUE_LIMIT = 1000;
/** Lines that come within this window go out together. */
const BATCH_WINDOW_MS = 1000;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
const SEND_TIMEOUT_MS = 30_000;

// CSI (colours, cursor moves), OSC (titles, links), character-set choices and the other two-character escapes.
const ESCAPE_SEQUENCE = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[()#][ -~]|[@-Z\\-_])/g;

/** A line as a terminal would show it, as plain text the allocator takes. */
export function plainText(raw: string): string {
  // A progress bar redraws its line after each carriage return: keep what was drawn last.
  const shown =
    raw
      .replace(ESCAPE_SEQUENCE, '')
      .split('\r')
      .filter((part) => part !== '')
      .pop() ?? '';
  const text = shown.replace(LOG_CONTROL_CHARACTERS, '');
  return text.length > MAX_LOG_LINE_LENGTH ? `${text.slice(0, MAX_LOG_LINE_LENGTH - 1)}…` : text;
}

/**
 * The VM's one progress and log channel to the allocator: its current step and its log lines,
 * batched. The first batch goes out at once, because the allocator's first "yes" is what makes
 * the VM registered. A batch the allocator refuses is dropped (it would be refused again);
 * one it could not take is sent again with backoff. Its own troubles go to the local log only.
 */
export class LogShipper {
  private queue: VmLogLine[] = [];
  private dropped = 0;
  private step = 'registering';
  private acceptedStep: string | undefined;
  private registered = false;
  /** A setup outcome not yet taken by the allocator (a reason, or null: passed). */
  private setupFailure: { reason: string | null } | undefined;
  private readonly wakeUp = new WakeUp();

  constructor(
    private readonly config: { vmName: string; stateDir: string },
    private readonly client: AllocatorClient,
    private readonly log: Logger,
  ) {}

  add(source: VmLogSource, level: LogLevel, raw: string): void {
    this.queue.push({ at: new Date().toISOString(), level, source, text: plainText(raw) });
    if (this.queue.length > QUEUE_LIMIT) {
      this.queue.shift();
      this.dropped += 1;
    }
    this.wakeUp.ring();
  }

  setStep(step: string): void {
    this.step = step;
    this.wakeUp.ring();
  }

  /** The setup failed (a reason that takes the VM out of the pool) or, with null, passed after all. */
  setSetupFailure(reason: string | null): void {
    this.setupFailure = { reason };
    this.wakeUp.ring();
  }

  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      const sent = await this.send(signal);
      failures = sent ? 0 : failures + 1;
      const wait = !sent
        ? backoffDelay(failures, BACKOFF_BASE_MS, BACKOFF_MAX_MS)
        : this.queue.length >= MAX_LOG_LINES_PER_BATCH
          ? 0
          : BATCH_WINDOW_MS;
      await sleep(wait, undefined, { signal }).catch(() => undefined);
      if (!this.pending()) await this.wakeUp.wait(signal);
    }
  }

  /** One last try for a stopping agent: its last lines often say why it stopped. */
  async flush(timeoutMs: number): Promise<void> {
    if (this.pending()) await this.send(AbortSignal.timeout(timeoutMs));
  }

  private pending(): boolean {
    return this.queue.length > 0 || this.dropped > 0 || this.step !== this.acceptedStep || this.setupFailure !== undefined;
  }

  /** Sends the step and the oldest lines; true when the allocator took them. */
  private async send(signal: AbortSignal): Promise<boolean> {
    const dropped = this.dropped;
    const note: VmLogLine[] = dropped
      ? [
          {
            at: new Date().toISOString(),
            level: 'warn',
            source: 'agent',
            text: `${dropped} older log lines were dropped while the allocator was out of reach.`,
          },
        ]
      : [];
    const lines = this.queue.slice(0, MAX_LOG_LINES_PER_BATCH - note.length);
    const step = this.step;
    const setupFailure = this.setupFailure;
    const batch: VmLogBatch = {
      hostname: this.config.vmName,
      step,
      lines: [...note, ...lines],
      ...(setupFailure ? { setupFailure: setupFailure.reason } : {}),
    };
    let status: number;
    let reason: string;
    try {
      const response = await this.client.post('/vm_logs', batch, AbortSignal.any([signal, AbortSignal.timeout(SEND_TIMEOUT_MS)]));
      status = response.status;
      reason = (await response.text()).slice(0, 200);
    } catch (error) {
      if (!signal.aborted) this.log.warn('agent.logs_failed', { reason: errorMessage(error) });
      return false;
    }
    if (status >= 500) {
      this.log.warn('agent.logs_failed', { status, reason });
      return false;
    }
    // Taken or refused, these lines are done with; lines dropped meanwhile are no longer in the queue.
    const done = new Set(lines);
    this.queue = this.queue.filter((line) => !done.has(line));
    this.dropped -= dropped;
    if (this.setupFailure === setupFailure) this.setupFailure = undefined;
    if (status >= 300) {
      this.log.warn('agent.logs_refused', { status, reason });
      return false;
    }
    this.acceptedStep = step;
    if (!this.registered) await this.markRegistered();
    return true;
  }

  /** Created once; a marker from an earlier run of the agent stays as it is. */
  private async markRegistered(): Promise<void> {
    try {
      await mkdir(this.config.stateDir, { recursive: true, mode: 0o700 });
      await writeFile(path.join(this.config.stateDir, REGISTERED_MARKER), `${new Date().toISOString()}\n`, { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        this.log.warn('agent.registered_marker_failed', { reason: errorMessage(error) });
        return;
      }
    }
    this.registered = true;
  }
}
