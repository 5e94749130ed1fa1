import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { Logger } from '../core/log';

/**
 * Middleware refusals (401, 403, 413) keep their own answer; anything else unexpected
 * becomes a plain 500 without internals, and the log gets the reason.
 */
export function handleUnexpectedErrors(app: Hono, log: Logger): Hono {
  app.onError((error, c) => {
    if (error instanceof HTTPException) return error.getResponse();
    log.error('http.unhandled', { method: c.req.method, path: c.req.path, reason: error.message });
    return c.json({ error: 'Internal error; the request was not completed. Try again.' }, 500);
  });
  return app;
}
