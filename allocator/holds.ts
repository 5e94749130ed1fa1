import { Delivery } from '../store/vms';
import { Logger, errorMessage } from '../core/log';

type FindDelivery = (hostname: string) => Promise<Delivery | undefined>;

/** One held `/vm_startup` request. It ends exactly once: delivered, timed out, aborted or superseded. */
class Hold {
  private ended = false;
  private checking = false;
  private checkAgain = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort = () => this.end(undefined);

  constructor(
    readonly hostname: string,
    holdMs: number,
    private readonly signal: AbortSignal,
    private readonly findDelivery: FindDelivery,
    private readonly log: Logger,
    private readonly settle: (hold: Hold, delivery: Delivery | undefined) => void,
  ) {
    this.timer = setTimeout(() => this.end(undefined), holdMs);
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Reads the row; a wake-up during a read triggers one more read so no assignment is missed. */
  async check(): Promise<void> {
    if (this.ended) return;
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    this.checking = true;
    do {
      this.checkAgain = false;
      try {
        const delivery = await this.findDelivery(this.hostname);
        if (delivery) this.end(delivery);
      } catch (error) {
        // The hold stays: the next notification or the agent's next poll checks again.
        this.log.warn('hold.check_failed', { hostname: this.hostname, reason: errorMessage(error) });
      }
    } while (this.checkAgain && !this.ended);
    this.checking = false;
  }

  end(delivery: Delivery | undefined): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.signal.removeEventListener('abort', this.onAbort);
    this.settle(this, delivery);
  }
}

/** The allocator's held long-polls, at most one per VM. */
export class HoldRegistry {
  private readonly holds = new Map<string, Hold>();

  constructor(
    private readonly findDelivery: FindDelivery,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.holds.size;
  }

  hostnames(): string[] {
    return [...this.holds.keys()];
  }

  /**
   * Holds until the VM has an assignment or `holdMs` passes. Registered before the
   * first read of the row, so an assignment is seen by that read or by a wake-up.
   */
  hold(hostname: string, holdMs: number, signal: AbortSignal): Promise<Delivery | undefined> {
    // A newer poll from the same VM means the older connection is stale.
    this.holds.get(hostname)?.end(undefined);
    return new Promise((resolve) => {
      const hold = new Hold(hostname, holdMs, signal, this.findDelivery, this.log, (ended, delivery) => {
        if (this.holds.get(hostname) === ended) this.holds.delete(hostname);
        resolve(delivery);
      });
      this.holds.set(hostname, hold);
      if (signal.aborted) hold.end(undefined);
      else void hold.check();
    });
  }

  wake(hostname: string): void {
    void this.holds.get(hostname)?.check();
  }

  /** Answers every hold "nothing yet", as on shutdown: agents simply poll again. */
  endAll(): void {
    for (const hold of [...this.holds.values()]) hold.end(undefined);
  }
}
