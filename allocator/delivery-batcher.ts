import { Logger, errorMessage } from '../core/log';
import { Delivery, findDeliveries, markDelivered } from '../core/vms';
import { Sql } from '../core/sql';

/**
 * Gathers the delivery checks asked for in one turn of the event loop into one read, so a
 * burst of notifications (or of polls) costs one database round trip, not one per VM. Marking
 * them delivered happens afterwards, off the path of the answer.
 */
export class DeliveryBatcher {
  private pending = new Map<string, { resolve: (delivery: Delivery | undefined) => void; reject: (error: unknown) => void }[]>();
  private scheduled = false;

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
        const delivered = [...deliveries].flatMap(([hostname, delivery]) => (delivery.kind === 'assignment' ? [{ hostname, assignmentId: delivery.assignmentId }] : []));
        markDelivered(this.sql, delivered).catch((error: unknown) => this.log.warn('delivery.mark_failed', { reason: errorMessage(error) }));
      } catch (error) {
        for (const hostname of slice) for (const waiter of batch.get(hostname)!) waiter.reject(error);
      }
    }
  }
}
