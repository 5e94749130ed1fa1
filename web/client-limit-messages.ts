/** "4 minutes" or "40 seconds": when a participant may try again, in words. */
function waitInWords(seconds: number): string {
  if (seconds < 90) return `${seconds} seconds`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

/** One VM per browser: a second email from the same browser gets this (unnamed when the page no longer knows which VM). */
export function browserHoldsMessage(hostname: string | undefined): string {
  return `This browser already has a VM${hostname ? `, ${hostname},` : ''} for another email: each browser gets one VM. Use ${hostname ?? 'that VM'}, or ask your instructor.`;
}

/** The client's address took its share of new VMs for this window (how long unknown: when the page no longer knows). */
export function addressLimitedMessage(retryAfterSeconds: number | undefined): string {
  const when = retryAfterSeconds === undefined ? 'a few minutes' : waitInWords(retryAfterSeconds);
  return `Many VMs were just taken from your network. Submit again in ${when} (your request was not stored), or ask your instructor.`;
}

/** Email alone opens nothing: the VM's name and PIN stay with the browser that asked for it. */
export const HELD_ELSEWHERE =
  'This email already has a VM, asked for from another browser. Open its page in that browser, or ask your instructor.';

/** The email already has a place in line, taken from another browser. */
export const IN_LINE_ELSEWHERE =
  'This email is already waiting in line, from another browser. Keep that browser’s page open, or ask your instructor.';

/** One place in line per browser. */
export const BROWSER_IN_LINE =
  'This browser is already waiting in line for another email: each browser holds one place. Go back to that place’s page, or ask your instructor.';
