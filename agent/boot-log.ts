import { mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KEPT_LOG_LINES_PER_VM, LogLevel, STEP_LINE } from '../contract/wire';
import { Logger, errorMessage } from '../core/log';
import { LogShipper, plainText } from './log-shipper';

const FOLLOW_EVERY_MS = 2000;
/** At most this much of the log is read at once, so a huge log costs bounded memory. */
const READ_LIMIT_BYTES = 1024 * 1024;
/** How far the log has been read, so a restarted agent or a rebooted VM does not send it again. */
const POSITION_FILE = 'boot-log-position.json';

// A boot log is plain text: these are the shapes apt, dpkg, curl, bash and systemd give warnings
// and failures. Warnings first: apt's "W: Failed to fetch …" is one.
const WARN_LINE = /^(W:|warning\b)|\bwarning:/i;
const ERROR_LINE = /^(E:|errors?\b|fatal\b)|\b(error|fatal):|\bfailed\b|command not found|^curl: \(\d+\)/i;

export function bootLineLevel(text: string): LogLevel {
  if (WARN_LINE.test(text)) return 'warn';
  return ERROR_LINE.test(text) ? 'error' : 'info';
}

interface Position {
  inode: number;
  offset: number;
}

/**
 * Ships the boot script's log: on start what earlier runs of the agent have not sent (its last
 * lines at most), then each line appended to it. A `LABLINK_STEP <name>` line appended while
 * the agent runs sets the VM's step; those written before it started are history, older than
 * the agent's own "registering".
 */
export class BootLogFollower {
  private readonly positionFile: string;

  constructor(
    private readonly file: string,
    private readonly stateDir: string,
    private readonly shipper: LogShipper,
    private readonly log: Logger,
  ) {
    this.positionFile = path.join(stateDir, POSITION_FILE);
  }

  async run(signal: AbortSignal): Promise<void> {
    let position = await readFile(this.positionFile, 'utf8')
      .then((text) => JSON.parse(text) as Position)
      .catch((): Position => ({ inode: -1, offset: 0 }));
    let catchingUp = true;
    let problem = '';
    while (!signal.aborted) {
      try {
        const next = await this.readNew(position, catchingUp);
        // Saved once queued, not once sent: at worst a crash loses a few lines, never repeats the log.
        if (next.offset !== position.offset || next.inode !== position.inode) await this.save(next);
        position = next;
        problem = '';
      } catch (error) {
        // Not written yet, or unreadable: look again later, and say so once.
        const reason = errorMessage(error);
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && reason !== problem)
          this.log.warn('agent.boot_log_unreadable', { file: this.file, reason });
        problem = reason;
      }
      catchingUp = false;
      await sleep(FOLLOW_EVERY_MS, undefined, { signal }).catch(() => undefined);
    }
  }

  private async readNew(position: Position, catchingUp: boolean): Promise<Position> {
    const info = await stat(this.file);
    // Another file, or this one cut short: read it from its start.
    const from = info.ino === position.inode && info.size >= position.offset ? position.offset : 0;
    if (info.size <= from) return { inode: info.ino, offset: from };
    const start = Math.max(from, info.size - READ_LIMIT_BYTES);
    const chunk = Buffer.alloc(info.size - start);
    const handle = await open(this.file, 'r');
    try {
      await handle.read(chunk, 0, chunk.length, start);
    } finally {
      await handle.close();
    }
    const end = chunk.lastIndexOf(0x0a) + 1;
    // The last line is not finished yet: wait for its end (unless it alone fills a whole read).
    if (end === 0 && chunk.length < READ_LIMIT_BYTES) return { inode: info.ino, offset: from };
    // Skipped ahead: the first line read is cut, so it is left out.
    const first = start > from ? chunk.indexOf(0x0a) + 1 : 0;
    const lines = chunk.subarray(first, end).toString('utf8').split('\n');
    if (start > from || lines.length > KEPT_LOG_LINES_PER_VM) {
      this.shipper.add(
        'agent',
        'info',
        `Earlier lines of ${this.file} are not sent: the allocator keeps the last ${KEPT_LOG_LINES_PER_VM} lines of each VM.`,
      );
    }
    for (const line of lines.slice(-KEPT_LOG_LINES_PER_VM)) this.ship(plainText(line), catchingUp);
    return { inode: info.ino, offset: start + (end || chunk.length) };
  }

  private ship(text: string, catchingUp: boolean): void {
    const step = STEP_LINE.exec(text)?.[1];
    if (step && !catchingUp) this.shipper.setStep(step);
    if (text.trim() !== '') this.shipper.add('boot', bootLineLevel(text), text);
  }

  private async save(position: Position): Promise<void> {
    await mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    await writeFile(this.positionFile, JSON.stringify(position));
  }
}
