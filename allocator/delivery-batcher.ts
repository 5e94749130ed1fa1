import { Logger, errorMessage } from '../core/log';
import { Delivery, findDeliveries, markDelivered } from '../store/vms';
import { Sql } from '../store/sql';

/**
 * Gathers the delivery checks asked for in one turn of the event loop into one read, so a
 * burst of notifications (or of polls) costs one database round trip, not one per VM. Marking
 * them delivered is asked for once each answer is sent, and gathered the same way.
 */
export class DeliveryBatcher {
  private pending = new Map<string, { resolve: (delivery: Delivery | undefined) => void; reject: (error: unknown) => void }[]>();
  private scheduled = false;
  private toMark: { hostname: string; assignmentId: string }[] = [];

  constructor(
    private readonly sql: Sql,
    private readonly log: Logger,
    private readonly maxBatch = 1000,
  ) {}

  findDelivery(hostname: string): Promise<Delivery | undefined> {
    return new Promise((resolve, reject) => {
      const waiting = this.pending.get(hostname) ?? [];
      waiting.push({ resolve, reject });
      this.pending.set(hostname, waiting);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = new Map();
    const hostnames = [...batch.keys()];
    for (let start = 0; start < hostnames.length; start += this.maxBatch) {
      const slice = hostnames.slice(start, start + this.maxBatch);
      try {
        const deliveries = await findDeliveries(this.sql, slice);
        for (const hostname of slice) for (const waiter of batch.get(hostname)!) waiter.resolve(deliveries.get(hostname));
      } catch (error) {
        for (const hostname of slice) for (const waiter of batch.get(hostname)!) waiter.reject(error);
      }
    }
  }

  /** Marks an assignment delivered: its answer has been sent. Nothing depends on the mark (both states are delivered again until the agent reports). */
  delivered(hostname: string, assignmentId: string): void {
    this.toMark.push({ hostname, assignmentId });
    if (this.toMark.length > 1) return;
    setImmediate(() => {
      const marks = this.toMark;
      this.toMark = [];
      markDelivered(this.sql, marks).catch((error: unknown) => this.log.warn('delivery.mark_failed', { reason: errorMessage(error) }));
    });
  }
}
