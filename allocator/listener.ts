import pg from 'pg';
import * as v from 'valibot';
import { APPLICATION_NAME, PgConnection } from '../store/pg-sql';
import { VM_UPDATES_CHANNEL } from '../store/migrations';
import { backoffDelay } from '../core/backoff';
import { Logger, errorMessage } from '../core/log';

const VM_UPDATE = v.object({ hostname: v.string(), state: v.string() });
export type VmUpdate = v.InferOutput<typeof VM_UPDATE>;

export interface ListenerOptions {
  /** A direct connection to the writer: never a pooler or proxy, which drop notifications. */
  connection: PgConnection;
  /** A hint that a VM's row changed; the row stays the truth. */
  onUpdate: (update: VmUpdate) => void;
  /** Called after every (re)connect once LISTEN is in place: re-read the database for every held VM. */
  onListening: () => void;
  log: Logger;
  pingIntervalMs?: number;
}

const MAX_RECONNECT_DELAY_MS = 10_000;
const PING_TIMEOUT_MS = 5_000;

/**
 * The allocator's single LISTEN connection (DESIGN rule 1): a dedicated client, never
 * from the pool. On loss it reconnects with backoff and jitter, LISTENs, then asks for
 * a re-read, in PostgreSQL's documented order.
 */
export class VmUpdateListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private failures = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private listening = false;
  private listenedOnce = false;

  constructor(private readonly options: ListenerOptions) {}

  get isListening(): boolean {
    return this.listening;
  }

  /** The first LISTEN succeeded: the database was reachable and the allocator is configured right. */
  get hasListened(): boolean {
    return this.listenedOnce;
  }

  /** Resolves once the first LISTEN is in place, or keeps retrying in the background. */
  start(): Promise<void> {
    return new Promise((resolve) => {
      const attempt = async () => {
        if (await this.connect()) resolve();
        else if (!this.stopped) this.scheduleReconnect(attempt);
        else resolve();
      };
      void attempt();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    const client = this.client;
    this.client = undefined;
    this.listening = false;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<boolean> {
    const client = new pg.Client({ application_name: `${APPLICATION_NAME}-allocator-listen`, ...this.options.connection, keepAlive: true });
    let lost = false;
    const onLost = (error?: Error) => {
      if (lost) return;
      lost = true;
      this.listening = false;
      clearInterval(this.pingTimer);
      if (this.client === client) this.client = undefined;
      client.end().catch(() => undefined);
      if (this.stopped) return;
      this.options.log.warn('listener.lost', { reason: error ? errorMessage(error) : 'connection ended' });
      this.scheduleReconnect(() => void this.reconnect());
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (message) => this.dispatch(message.payload));
    try {
      await client.connect();
      await client.query(`LISTEN ${VM_UPDATES_CHANNEL}`);
    } catch (error) {
      lost = true;
      client.end().catch(() => undefined);
      this.failures += 1;
      this.options.log.warn('listener.connect_failed', { reason: errorMessage(error), attempt: this.failures });
      return false;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return true;
    }
    this.client = client;
    this.failures = 0;
    this.listening = true;
    this.listenedOnce = true;
    this.startPing(client, onLost);
    this.options.log.info('listener.listening', { channel: VM_UPDATES_CHANNEL });
    this.options.onListening();
    return true;
  }

  private async reconnect(): Promise<void> {
    if (this.stopped) return;
    if (!(await this.connect()) && !this.stopped) this.scheduleReconnect(() => void this.reconnect());
  }

  private scheduleReconnect(run: () => void): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(run, backoffDelay(this.failures + 1, 250, MAX_RECONNECT_DELAY_MS));
  }

  /**
   * A half-open TCP connection delivers no notifications and no error, and a query on it just
   * waits: a periodic query that does not answer in time counts as a lost connection.
   */
  private startPing(client: pg.Client, onLost: (error?: Error) => void): void {
    clearInterval(this.pingTimer);
    // One ping at a time: a second query on a client still waiting for the first is queued behind it (deprecated in pg 8).
    let pinging = false;
    this.pingTimer = setInterval(() => {
      if (pinging) return;
      pinging = true;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error('the LISTEN connection stopped answering')), PING_TIMEOUT_MS);
      });
      Promise.race([client.query('SELECT 1'), timeout])
        .catch((error: Error) => onLost(error))
        .finally(() => {
          pinging = false;
          clearTimeout(timer);
        });
    }, this.options.pingIntervalMs ?? 30_000);
    this.pingTimer.unref();
  }

  private dispatch(payload: string | undefined): void {
    const update = parseVmUpdate(payload);
    if (update) this.options.onUpdate(update);
    else this.options.log.warn('listener.bad_payload', { channel: VM_UPDATES_CHANNEL });
  }
}

/** What the trigger sends; anything else (another sender on the channel, a future format) is skipped. */
function parseVmUpdate(payload: string | undefined): VmUpdate | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload ?? '');
  } catch {
    return undefined;
  }
  const update = v.safeParse(VM_UPDATE, parsed);
  return update.success ? update.output : undefined;
}
