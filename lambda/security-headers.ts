import { MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';

/**
 * Every page and answer of the web app: scripts and styles only from our own files (no inline
 * ones, so injected markup cannot run), never inside another site's frame, no MIME sniffing, and
 * no page address (a VM page's link is its key) sent to other sites. `same-origin` rather than
 * `no-referrer`: with the latter, browsers send `Origin: null` on our own form posts.
 */
export function securityHeaders(): MiddlewareHandler {
  return secureHeaders({
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
}
