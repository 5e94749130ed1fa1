import type { Context } from 'hono';
import type { ServerResponse } from 'node:http';

/**
 * Runs `work` once the answer has been handed to the operating system, so the client never
 * waits for it; not at all when the answer could not be sent (the connection was gone).
 * Without a Node response (`app.request` in tests), after the current turn of the event loop.
 */
export function afterAnswer(c: Context, work: () => void): void {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (outgoing) outgoing.once('finish', work);
  else setImmediate(work);
}
