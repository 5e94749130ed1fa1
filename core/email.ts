/** `suggestion`: a likely meant address; the participant may keep theirs by confirming it. */
export type EmailParseResult = { ok: true; email: string } | { ok: false; message: string; suggestion?: string };

export const MAX_EMAIL_LENGTH = 254;
// Pragmatic: one @, a dot-separated domain with a 2+ letter TLD, no spaces or quotes.
const EMAIL_PATTERN =
  /^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}$/;
const COMMON_DOMAINS = [
  'gmail.com',
  'googlemail.com',
  'outlook.com',
  'hotmail.com',
  'yahoo.com',
  'icloud.com',
  'live.com',
  'proton.me',
  'protonmail.com',
];
/** Real mail domains one keystroke away from a common one: never a typo. */
const REAL_LOOKALIKES = [
  'ymail.com',
  'mail.com',
  'email.com',
  'gmx.com',
  'gmx.de',
  'gmx.net',
  'aol.com',
  'me.com',
  'mac.com',
  'msn.com',
  'live.de',
  'live.nl',
  'yahoo.de',
  'yahoo.fr',
  'yahoo.es',
  'yahoo.it',
  'outlook.de',
  'outlook.fr',
  'hotmail.de',
  'hotmail.fr',
  'hotmail.it',
  'hotmail.es',
  'proton.ch',
  'pm.me',
];

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
  if (COMMON_DOMAINS.includes(domain) || REAL_LOOKALIKES.includes(domain)) return undefined;
  return COMMON_DOMAINS.find((known) => editDistance(domain, known) === 1);
}

/**
 * Emails are compared case-insensitively: one participant, one VM. A likely typo in a common
 * domain is only a suggestion: `confirmed`, equal to the address as typed, keeps it.
 */
export function parseEmail(input: unknown, confirmed?: unknown): EmailParseResult {
  if (typeof input !== 'string' || input.trim() === '') return { ok: false, message: 'Enter your email address.' };
  const email = input.trim().toLowerCase();
  if (email.length > MAX_EMAIL_LENGTH) return { ok: false, message: 'That email address is too long.' };
  if (!EMAIL_PATTERN.test(email) || email.includes('..')) {
    return { ok: false, message: `"${email.slice(0, 60)}" is not a valid email address, for example name@example.com.` };
  }
  const [local, domain] = email.split('@');
  const suggestion = likelyDomainTypo(domain);
  const confirmedAsTyped = typeof confirmed === 'string' && confirmed.trim().toLowerCase() === email;
  if (suggestion && !confirmedAsTyped) {
    return {
      ok: false,
      message: `Did you mean ${local}@${suggestion}? Correct the part after the @, or confirm that ${email} is right.`,
      suggestion: `${local}@${suggestion}`,
    };
  }
  return { ok: true, email };
}
