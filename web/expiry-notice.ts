import { html } from 'hono/html';

/** The participant is warned this long before the workshop's VMs stop. */
export const EXPIRY_WARNING_SECONDS = 600;

/** "1 h 20 min" or "7 min": the same words as the page's script writes while it counts down. */
export function hoursAndMinutes(seconds: number): string {
  const minutes = Math.max(0, Math.ceil(seconds / 60));
  return minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`;
}

/**
 * The workshop's end on the participant's page: the time left, and from 10 minutes before a
 * warning that their files go with the VM. The page's script counts both down from the
 * server's seconds left (not the browser's clock, which may be wrong).
 */
export function expiryNotice(expiresAt: string, now = Date.now()) {
  const secondsLeft = Math.floor((Date.parse(expiresAt) - now) / 1000);
  const at = `${new Date(expiresAt).toISOString().slice(11, 16)} UTC`;
  if (secondsLeft <= 0)
    return html`<p class="notice" id="expiry">The workshop ended at ${at}: its VMs are stopped and will be deleted with the files on them.</p>`;
  const warn = secondsLeft <= EXPIRY_WARNING_SECONDS;
  return html`<div id="expiry" data-seconds-left="${secondsLeft}" data-warn-seconds="${EXPIRY_WARNING_SECONDS}">
<p class="muted">The workshop ends at ${at}, in <span id="expiry-left">${hoursAndMinutes(secondsLeft)}</span>.</p>
<p class="notice" id="expiry-warning" role="alert"${warn ? '' : html` hidden`}><strong>The workshop ends in <span id="expiry-warning-left">${hoursAndMinutes(secondsLeft)}</span>.</strong> Your VM then stops, and it is deleted with all your files on it: save or download what you want to keep now.</p>
</div>`;
}
