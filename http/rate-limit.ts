import { Context, MiddlewareHandler } from 'hono';

export interface Rate {
  /** Requests per second, sustained. */
  perSecond: number;
  /** Requests allowed at once after a quiet spell. */
  burst: number;
}

/** A token bucket: `burst` tokens, refilled at `perSecond`. */
class Bucket {
  private tokens: number;
  private updated: number;

  constructor(
    private readonly rate: Rate,
    now: number,
  ) {
    this.tokens = rate.burst;
    this.updated = now;
  }

  /** Refills for the time passed; true when the bucket is full again (its client has gone quiet). */
  refill(now: number): boolean {
    this.tokens = Math.min(this.rate.burst, this.tokens + ((now - this.updated) / 1000) * this.rate.perSecond);
    this.updated = now;
    return this.tokens >= this.rate.burst;
  }

  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export interface RateLimitOptions {
  /** Each client's own limit; none when unset (API Gateway's stage limits are for everyone together). */
  perClient?: Rate;
  global: Rate;
  /** Who is asking: the client's address. */
  clientKey: (c: Context) => string;
  /** Milliseconds now; the benchmark runs the limiter on a simulated clock. @default Date.now */
  clock?: () => number;
}

const MAX_TRACKED_CLIENTS = 10_000;

/**
 * Per-client and global limits in front of a scarce route (local mode; API Gateway
 * throttles in AWS). Over the limit: 429 with Retry-After, and nothing reaches the handler.
 */
export function rateLimit(options: RateLimitOptions): MiddlewareHandler {
  const clock = options.clock ?? Date.now;
  const global = new Bucket(options.global, clock());
  const clients = new Map<string, Bucket>();
  const clientBucket = (perClient: Rate, key: string, now: number): Bucket => {
    let bucket = clients.get(key);
    if (!bucket) {
      if (clients.size >= MAX_TRACKED_CLIENTS) {
        for (const [client, candidate] of clients) if (candidate.refill(now)) clients.delete(client);
        // Still full of busy clients: forget the oldest rather than grow without bound.
        if (clients.size >= MAX_TRACKED_CLIENTS) clients.delete(clients.keys().next().value!);
      }
      bucket = new Bucket(perClient, now);
      clients.set(key, bucket);
    }
    return bucket;
  };
  return async (c, next) => {
    const now = clock();
    const client = options.perClient && clientBucket(options.perClient, options.clientKey(c), now);
    if ((client && !client.take(now)) || !global.take(now)) {
      c.header('retry-after', '1');
      return c.json({ error: 'Too many requests right now. Wait a moment and submit again.' }, 429);
    }
    await next();
  };
}
