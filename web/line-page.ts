import { html } from 'hono/html';
import { LinePlace, VmOnItsWay } from '../store/waiting-line';
import { VmStatus } from '../store/vm-status';
import { layout } from './layout';
import { LINE_REFRESH_SECONDS } from '../contract/page-polling';
import { CRD_HEADLESS_URL } from './pages';

/** What a VM on its way is doing, in a participant's words. */
const ON_ITS_WAY_WORDS: Partial<Record<VmStatus, string>> = {
  free: 'a free VM',
  resetting: 'a VM being wiped after its last participant',
  starting: 'a VM being started',
  stopped: 'a stopped VM, started when needed',
  booting: 'a VM still booting',
  replacing: 'a spare VM booting',
};

const wordsFor = (vm: VmOnItsWay) => ON_ITS_WAY_WORDS[vm.status] ?? 'a VM on its way';

function inMinutes(seconds: number): string {
  if (seconds <= 0) return 'any moment now';
  const minutes = Math.ceil(seconds / 60);
  return `in about ${minutes} minute${minutes === 1 ? '' : 's'}`;
}

/** The estimate for a place: which VM should come for it, and when; or that none is on its way yet. */
export function estimateText(estimate: VmOnItsWay | undefined): string {
  if (!estimate)
    return 'No VM is on its way for your place yet: the next one frees when a participant ahead of you is done. Your instructor sees the line.';
  return `Expected ${inMinutes(estimate.seconds)}: ${wordsFor(estimate)}.`;
}

function onTheWayText(onTheWay: readonly VmOnItsWay[]): string {
  const counts = new Map<string, number>();
  for (const vm of onTheWay) {
    const words = wordsFor(vm);
    counts.set(words, (counts.get(words) ?? 0) + 1);
  }
  if (counts.size === 0) return 'No VM is on its way right now.';
  return `On its way: ${[...counts].map(([words, count]) => `${count} × ${words}`).join('; ')}.`;
}

/** The form to paste a fresh command, when the turn came or in case the participant wants to. */
function freshCommandForm(ticket: string, error?: string) {
  return html`<form method="post" action="/line/${ticket}" novalidate>
  <label for="crd_command">A new Debian Linux command from Google</label>
  <p class="hint" id="crd_command-hint">Open <a href="${CRD_HEADLESS_URL}" target="_blank" rel="noopener">remotedesktop.google.com/headless</a>, click Begin, Next, Authorize, and copy the command under Debian Linux (it starts with DISPLAY=).</p>
  <textarea id="crd_command" name="crd_command" required spellcheck="false" autocapitalize="off" autocomplete="off" aria-describedby="crd_command-hint${error ? ' crd_command-error' : ''}"${error ? html` aria-invalid="true"` : ''}></textarea>
  ${error ? html`<p class="error" id="crd_command-error">${error}</p>` : ''}
  <button type="submit">Send the new command</button>
</form>`;
}

/** A participant's place in line: where they stand and when to expect a VM, their turn to paste a fresh command, or a turn that passed. */
export function linePage(ticket: string, place: Exclude<LinePlace, { kind: 'served' }>, error?: string) {
  switch (place.kind) {
    case 'waiting':
      return layout(
        `Number ${place.position} in line`,
        html`<h1>You are in line for a VM</h1>
${error ? html`<p class="error" role="alert" id="line-error">${error}</p>` : ''}
<p id="position" class="notice" role="status" aria-live="polite">You are number <strong>${place.position}</strong> of ${place.length} waiting.</p>
<p id="estimate">${estimateText(place.estimate)}</p>
<p class="muted" id="on-the-way">${onTheWayText(place.onTheWay)}</p>
<section class="card" aria-labelledby="next">
  <h2 id="next">Keep this page open</h2>
  <p>When a VM is free for you, it gets the command you sent if that is still fresh, and this page shows your VM. Google's commands work for a few minutes only, so if yours may have expired, this page asks you for a new one.</p>
  <p class="muted">This page checks again every ${LINE_REFRESH_SECONDS} seconds by itself. <a href="/line/${ticket}">Check now</a></p>
</section>`,
        { script: 'line.js', refreshSeconds: LINE_REFRESH_SECONDS },
      );
    case 'called': {
      const minutes = Math.max(1, Math.ceil(place.turnLeftSeconds / 60));
      return layout(
        `${error ? 'Error: ' : ''}Your turn: a new command, please`,
        html`<h1>Your turn: a VM is free for you</h1>
<p id="turn" class="notice" role="alert">The command you sent may have expired. Send a new one within <strong>${minutes} minute${minutes === 1 ? '' : 's'}</strong>, or the VM goes to the next in line.</p>
<section class="card">${freshCommandForm(ticket, error)}</section>
<p class="muted"><a href="/line/${ticket}">Check how long is left</a></p>`,
      );
    }
    case 'passed':
      return layout(
        'Your turn passed',
        html`<h1>Your turn passed</h1>
<p id="passed" class="notice">A VM was free for you, but no new command came in time, so it went to the next in line.</p>
<p><a class="button" href="/?email=${encodeURIComponent(place.email)}">Take a new place in line</a></p>`,
      );
  }
}

/** The instructor's view of the line: how many participants wait for a VM. */
export function lineSection(waiting: number) {
  return html`<p id="waiting-line" class="${waiting > 0 ? 'notice' : 'muted'}">Waiting line: ${waiting === 0 ? 'nobody waits for a VM' : `${waiting} participant${waiting === 1 ? '' : 's'} waiting for a VM`}.</p>`;
}
