import { MiddlewareHandler } from 'hono';

/**
 * Refuses state-changing requests a browser sends on behalf of another site (it would attach
 * cached Basic credentials): a foreign Origin or `Sec-Fetch-Site: cross-site`. Scripts and
 * command-line clients, which send neither, pass.
 */
export function sameOriginOnly(refusal = 'Cross-site requests to the admin routes are refused.'): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const origin = c.req.header('origin');
    const crossSite = c.req.header('sec-fetch-site') === 'cross-site';
    if (crossSite || (origin !== undefined && origin !== new URL(c.req.url).origin)) {
      return c.json({ error: refusal }, 403);
    }
    return next();
  };
}
