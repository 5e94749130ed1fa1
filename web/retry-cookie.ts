import { Context } from 'hono';
import { setCookie } from 'hono/cookie';

/** Proves "this browser submitted the last command" (or was handed the VM): needed to retry a failed setup, or to give the VM back. */
export const RETRY_COOKIE = 'lablink_retry';

export function setRetryCookie(c: Context, retryToken: string): void {
  setCookie(c, RETRY_COOKIE, retryToken, {
    path: '/',
    httpOnly: true,
    sameSite: 'Lax',
    secure: new URL(c.req.url).protocol === 'https:',
    maxAge: 7 * 24 * 3600,
  });
}
