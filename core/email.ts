export type EmailParseResult = { ok: true; email: string } | { ok: false; message: string };

const MAX_EMAIL_LENGTH = 254;
// Pragmatic: one @, a dot-separated domain with a 2+ letter TLD, no spaces or quotes.
const EMAIL_PATTERN = /^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$/;
const COMMON_DOMAINS = ['gmail.com', 'googlemail.com', 'outlook.com', 'hotmail.com', 'yahoo.com', 'icloud.com', 'live.com', 'proton.me', 'protonmail.com'];

/** Edit distance with adjacent transpositions (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** A well-known mail domain one keystroke away from the one typed, if any. */
function likelyDomainTypo(domain: string): string | undefined {
  if (COMMON_DOMAINS.includes(domain)) return undefined;
  return COMMON_DOMAINS.find((known) => editDistance(domain, known) === 1);
}

/** Emails are compared case-insensitively: one participant, one VM. */
export function parseEmail(input: unknown): EmailParseResult {
  if (typeof input !== 'string' || input.trim() === '') return { ok: false, message: 'Enter your email address.' };
  const email = input.trim().toLowerCase();
  if (email.length > MAX_EMAIL_LENGTH) return { ok: false, message: 'That email address is too long.' };
  if (!EMAIL_PATTERN.test(email) || email.includes('..')) {
    return { ok: false, message: `"${email.slice(0, 60)}" is not a valid email address, for example name@example.com.` };
  }
  const [local, domain] = email.split('@');
  const suggestion = likelyDomainTypo(domain);
  if (suggestion) return { ok: false, message: `Did you mean ${local}@${suggestion}? Check the part after the @.` };
  return { ok: true, email };
}
