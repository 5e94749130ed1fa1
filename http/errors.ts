import { Hono } from 'hono';
import { Logger } from '../core/log';

/** Unexpected errors become a plain 500 without internals; the log gets the reason. */
export function handleUnexpectedErrors(app: Hono, log: Logger): Hono {
  app.onError((error, c) => {
    log.error('http.unhandled', { method: c.req.method, path: c.req.path, reason: error.message });
    return c.json({ error: 'Internal error; the request was not completed. Try again.' }, 500);
  });
  return app;
}
