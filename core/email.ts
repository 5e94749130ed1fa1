export type EmailParseResult = { ok: true; email: string } | { ok: false; message: string };

const MAX_EMAIL_LENGTH = 254;
// Pragmatic: one @, a dot-separated domain with a 2+ letter TLD, no spaces or quotes.
const EMAIL_PATTERN = /^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$/;

/** Emails are compared case-insensitively: one participant, one VM. */
export function parseEmail(input: unknown): EmailParseResult {
  if (typeof input !== 'string' || input.trim() === '') return { ok: false, message: 'Enter your email address.' };
  const email = input.trim().toLowerCase();
  if (email.length > MAX_EMAIL_LENGTH) return { ok: false, message: 'That email address is too long.' };
  if (!EMAIL_PATTERN.test(email) || email.includes('..')) {
    return { ok: false, message: `"${email.slice(0, 60)}" is not a valid email address, for example name@example.com.` };
  }
  return { ok: true, email };
}
