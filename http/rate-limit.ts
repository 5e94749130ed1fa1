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
  private updated = Date.now();

  constructor(private readonly rate: Rate) {
    this.tokens = rate.burst;
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
  perClient: Rate;
  global: Rate;
  /** Who is asking: the client's address. */
  clientKey: (c: Context) => string;
}

const MAX_TRACKED_CLIENTS = 10_000;

/**
 * Per-client and global limits in front of a scarce route (local mode; API Gateway
 * throttles in AWS). Over the limit: 429 with Retry-After, and nothing reaches the handler.
 */
export function rateLimit(options: RateLimitOptions): MiddlewareHandler {
  const global = new Bucket(options.global);
  const clients = new Map<string, Bucket>();
  return async (c, next) => {
    const now = Date.now();
    const key = options.clientKey(c);
    let bucket = clients.get(key);
    if (!bucket) {
      if (clients.size >= MAX_TRACKED_CLIENTS) {
        for (const [client, candidate] of clients) if (candidate.refill(now)) clients.delete(client);
        // Still full of busy clients: forget the oldest rather than grow without bound.
        if (clients.size >= MAX_TRACKED_CLIENTS) clients.delete(clients.keys().next().value!);
      }
      bucket = new Bucket(options.perClient);
      clients.set(key, bucket);
    }
    if (!bucket.take(now) || !global.take(now)) {
      c.header('retry-after', '1');
      return c.json({ error: 'Too many requests right now. Wait a moment and submit again.' }, 429);
    }
    await next();
  };
}
