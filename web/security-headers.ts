import { MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';

/**
 * Every page and answer of the web app: scripts and styles only from our own files (no inline
 * ones, so injected markup cannot run), never inside another site's frame, no MIME sniffing, and
 * no page address (a VM page's link is its key) sent to other sites, and nothing stored by a cache. `same-origin` rather than
 * `no-referrer`: with the latter, browsers send `Origin: null` on our own form posts.
 */
export function securityHeaders(): MiddlewareHandler {
  const headers = secureHeaders({
    contentSecurityPolicy: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'"],
      connectSrc: ["'self'"],
      formAction: ["'self'"],
      baseUri: ["'none'"],
      frameAncestors: ["'none'"],
    },
    xFrameOptions: 'DENY',
    xContentTypeOptions: 'nosniff',
    referrerPolicy: 'same-origin',
    crossOriginOpenerPolicy: 'same-origin',
  });
  return async (c, next) => {
    await headers(c, next);
    // Pages show PINs, emails and the fleet: kept by no browser or proxy cache (the back button
    // of a shared computer included). Only answers that say otherwise (hashed assets) are cached.
    if (!c.res.headers.has('cache-control')) c.res.headers.set('cache-control', 'no-store');
  };
}
