import { html } from 'hono/html';
import { IdleReleasePolicy } from '../core/idle-release';
import { IdleDeadline } from '../store/idle-deadlines';

/** "12 min" or "40 s": the time left, rounded up to whole minutes past the first. */
export function minutesLeft(seconds: number): string {
  if (seconds < 60) return `${Math.max(0, seconds)} s`;
  return `${Math.ceil(seconds / 60)} min`;
}

/**
 * The participant's warning that their VM goes to someone else: always while setup has failed
 * (they must send a new command), and in the last `warnBeforeSeconds` when they never connected.
 */
export function idleNotice(deadline: IdleDeadline | undefined, policy: IdleReleasePolicy) {
  if (!deadline) return '';
  const left = minutesLeft(deadline.secondsLeft);
  if (deadline.reason === 'failed') {
    return html`<p class="notice" id="idle-release" role="alert">Submit a new command within <strong>${left}</strong>: after that, ${deadline.hostname} goes back to the pool for someone else, and you would ask for a new VM.</p>`;
  }
  if (deadline.secondsLeft > policy.warnBeforeSeconds) return '';
  return html`<p class="notice" id="idle-release" role="alert">You have not connected to ${deadline.hostname} yet. Connect within <strong>${left}</strong>, or it is given back for someone else.</p>`;
}

const REASON_TEXT: Record<IdleDeadline['reason'], string> = {
  failed: 'setup failed, no new command',
  unconnected: 'never connected',
};

/** The dashboard's list of VMs held by nobody, with the time left before each goes back to the pool. */
export function idleSection(deadlines: IdleDeadline[]) {
  if (deadlines.length === 0) return '';
  return html`<section id="idle-release" aria-labelledby="idle-heading"><h2 id="idle-heading">Going back to the pool unless their participant acts</h2>
<ul>${deadlines.map((deadline) => html`<li>${deadline.hostname}: ${REASON_TEXT[deadline.reason]}, ${deadline.secondsLeft > 0 ? html`${minutesLeft(deadline.secondsLeft)} left` : 'releasing now'}</li>`)}</ul></section>`;
}
