import { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import * as v from 'valibot';
import { MAX_COMMAND_LENGTH } from '../core/crd-command';
import { MAX_EMAIL_LENGTH } from '../core/email';
import { HOSTNAME_PATTERN } from '../contract/wire';
import { FormValues } from './pages';

/** Why a browser's request for a VM was refused; each has one fixed text, so a link cannot make the page say anything else. */
export const REFUSAL_STATUS = {
  unreadable: 400,
  invalid: 400,
  access_denied: 403,
  held_elsewhere: 409,
  browser_holds: 409,
  retry_refused: 409,
  in_line_elsewhere: 409,
  browser_in_line: 409,
  address_limited: 429,
  no_vm_free: 503,
  vm_starting: 503,
} as const;
export type RefusalCode = keyof typeof REFUSAL_STATUS;

/**
 * A refused form post, kept for the page that shows it: what was typed (the command included)
 * and the refusal's details. It travels in a short-lived cookie, never in the URL, since the
 * command holds a one-time code and the VM's name is this browser's alone.
 */
export interface Refusal {
  code: RefusalCode;
  values: FormValues & { emailConfirmed?: string };
  /** address_limited: when a new VM may be taken (epoch seconds), so a reload counts down. */
  retryAt?: number;
  /** browser_holds: the VM this browser already has. */
  hostname?: string;
}

const REFUSAL_COOKIE = 'lablink_refusal';
/** Long enough to fix a typo; Google's command itself lasts only a few minutes. */
const REFUSAL_COOKIE_SECONDS = 600;
/** Browsers keep cookies up to about 4 KB; a bigger paste is dropped rather than the whole refusal. */
const MAX_COOKIE_VALUE = 3_800;

const text = (max: number) => v.optional(v.pipe(v.string(), v.maxLength(max)));
// One character over each limit still fails its check the same way when the page judges it again.
const REFUSAL = v.object({
  code: v.picklist(Object.keys(REFUSAL_STATUS) as RefusalCode[]),
  values: v.object({
    email: text(MAX_EMAIL_LENGTH + 1),
    emailConfirmed: text(MAX_EMAIL_LENGTH + 1),
    crdCommand: text(MAX_COMMAND_LENGTH + 1),
    accessCode: text(65),
  }),
  retryAt: v.optional(v.pipe(v.number(), v.integer())),
  hostname: v.optional(v.pipe(v.string(), v.regex(HOSTNAME_PATTERN))),
});

const clip = (value: string | undefined, max: number) => value?.slice(0, max + 1);
const encode = (refusal: Refusal) => Buffer.from(JSON.stringify(refusal)).toString('base64url');

/**
 * Post/Redirect/Get for refusals: the browser is sent to `/?error=<code>` (with the typed email,
 * as the VM page's "Get a new command" link does), so a reload shows the page again instead of
 * posting the form a second time.
 */
export function redirectToRefusal(c: Context, refusal: Refusal): Response {
  const { values } = refusal;
  const kept: Refusal = {
    ...refusal,
    values: {
      email: clip(values.email, MAX_EMAIL_LENGTH),
      emailConfirmed: clip(values.emailConfirmed, MAX_EMAIL_LENGTH),
      crdCommand: clip(values.crdCommand, MAX_COMMAND_LENGTH),
      accessCode: clip(values.accessCode, 64),
    },
  };
  let cookie = encode(kept);
  if (cookie.length > MAX_COOKIE_VALUE) cookie = encode({ ...kept, values: { ...kept.values, crdCommand: undefined } });
  setCookie(c, REFUSAL_COOKIE, cookie, {
    path: '/',
    httpOnly: true,
    sameSite: 'Strict',
    secure: new URL(c.req.url).protocol === 'https:',
    maxAge: REFUSAL_COOKIE_SECONDS,
  });
  const query = new URLSearchParams({
    error: refusal.code,
    ...(kept.values.email ? { email: kept.values.email.slice(0, MAX_EMAIL_LENGTH) } : {}),
  });
  return c.redirect(`/?${query}`, 303);
}

/**
 * The refusal `/?error=<code>` shows: the cookie's when it names the same code, else only the
 * code and the email from the URL (cookies off, or the cookie expired).
 */
export function readRefusal(c: Context): Refusal | undefined {
  const code = c.req.query('error');
  if (!v.is(REFUSAL.entries.code, code)) return undefined;
  let kept: unknown;
  try {
    kept = JSON.parse(Buffer.from(getCookie(c, REFUSAL_COOKIE) ?? '', 'base64url').toString('utf8'));
  } catch {
    kept = undefined;
  }
  if (v.is(REFUSAL, kept) && kept.code === code) return kept;
  return { code, values: { email: c.req.query('email')?.slice(0, MAX_EMAIL_LENGTH) } };
}

/** After a VM was given: the kept command (a used code by now) leaves the browser. */
export function forgetRefusal(c: Context): void {
  if (getCookie(c, REFUSAL_COOKIE) !== undefined) deleteCookie(c, REFUSAL_COOKIE, { path: '/' });
}
