import { html } from 'hono/html';
import { vmPageNoScriptRefreshSeconds, vmPagePollSeconds } from '../contract/page-polling';
import { AssignmentView } from '../store/assignment';
import { commandRejected } from '../store/vm-status';
import { Progress } from '../contract/page-polling';
import { layout } from './layout';
import { CRD_ACCESS_URL } from './pages';

/** Setting up usually takes under a minute; past this the page says it is slow and what to do. */
export const SLOW_SETUP_SECONDS = 120;

/** The headline of each state. */
const PROGRESS_TEXT: Record<Progress, (hostname: string) => string> = {
  assigned: (vm) => `Waiting for ${vm} to pick up your request…`,
  configuring: (vm) => `${vm} is setting up Chrome Remote Desktop…`,
  ready: (vm) => `Ready. Open remotedesktop.google.com/access, click ${vm} and enter your PIN.`,
  failed: () => 'Setting up Chrome Remote Desktop failed.',
  broken: (vm) => `${vm} has stopped working.`,
  released: (vm) => `The instructor has taken ${vm} back.`,
};

/** The state in a word or two, first in the page's title: a screen reader reads it when the page changes. */
function titleState(view: AssignmentView): string {
  if (view.progress === 'failed') return view.movedFrom ? 'New command needed' : view.stuck ? 'Ask your instructor' : 'Failed';
  return { assigned: 'Waiting', configuring: 'Setting up', ready: 'Ready', broken: 'Stopped working', released: 'Taken back' }[
    view.progress
  ];
}

/** The page's headline, also sent as `message` by the status endpoint. */
export function progressMessage(view: AssignmentView): string {
  // A moved participant's new VM waits for their command: nothing of theirs failed on it.
  if (view.progress === 'failed' && view.movedFrom) return `${view.hostname} is waiting for a new command from you.`;
  if (view.progress === 'failed' && view.stuck) return `Chrome Remote Desktop keeps failing on ${view.hostname}.`;
  return PROGRESS_TEXT[view.progress](view.hostname);
}

/** True while setting up runs past SLOW_SETUP_SECONDS. */
export function setupIsSlow(view: AssignmentView): boolean {
  return (view.progress === 'assigned' || view.progress === 'configuring') && (view.elapsedSeconds ?? 0) >= SLOW_SETUP_SECONDS;
}

/** "1 min 5 s": the same words as the page's script writes while it counts. */
function duration(seconds: number): string {
  const minutes = Math.floor(seconds / 60);
  return minutes > 0 ? `${minutes} min ${seconds % 60} s` : `${seconds} s`;
}

/** What a failed start-host means for the participant, before the raw message. */
function failureExplanation(view: AssignmentView): string {
  if (view.movedFrom) return `${view.hostname} needs a command of its own before you can connect to it.`;
  if (commandRejected(view.error)) {
    return 'Google did not accept your command: each command works only once and only for a few minutes, and this one had expired or was already used.';
  }
  return `Chrome Remote Desktop could not be set up on ${view.hostname} with your command.`;
}

function newCommandButton(view: AssignmentView) {
  const href = view.email ? `/?email=${encodeURIComponent(view.email)}` : '/';
  return html`<p>Go back to step 1, get a new command from Google, and submit it with the same email from this browser: you keep ${view.hostname} and your PIN.</p>
<p><a class="button" id="next-step" href="${href}">Get a new command</a></p>`;
}

function askInstructor(view: AssignmentView, why: string) {
  return html`<p id="next-step"><strong>Ask your instructor</strong> and tell them your VM's name, <strong>${view.hostname}</strong>. ${why}</p>`;
}

/** start-host's own words, folded away under the explanation. */
function reported(view: AssignmentView) {
  return view.error
    ? html`<details><summary>What ${view.hostname} reported</summary><p class="log-text" id="raw-error">${view.error}</p></details>`
    : '';
}

/** What the participant reads under the headline: what happened, and the next step. */
function stateDetail(view: AssignmentView) {
  switch (view.progress) {
    case 'assigned':
    case 'configuring': {
      const elapsed = view.elapsedSeconds ?? 0;
      return html`<p id="elapsed" class="muted" data-elapsed="${elapsed}" data-slow-after="${SLOW_SETUP_SECONDS}">Started <span id="elapsed-time">${duration(elapsed)}</span> ago. This usually takes under a minute.</p>
<div id="slow" class="notice"${setupIsSlow(view) ? '' : html` hidden`}>
  <p>This is taking longer than usual. Keep this page open: it changes by itself as soon as ${view.hostname} is ready or fails.</p>
  ${askInstructor(view, 'If nothing changes within 5 minutes, they can look at its log or move you to another VM.')}
</div>`;
    }
    case 'failed':
      if (view.stuck) {
        return html`<p id="explanation">It failed more than once, and not because of your command: something on ${view.hostname} is wrong, and a new command will not fix it.</p>
${askInstructor(view, 'They can move you to a working VM; this page then takes you there.')}
${reported(view)}`;
      }
      return html`<p id="explanation">${failureExplanation(view)}</p>
${newCommandButton(view)}
${view.movedFrom ? '' : reported(view)}`;
    case 'broken':
      return html`<p id="explanation">You cannot use it until the instructor has looked at it.</p>
${askInstructor(view, 'They can move you to a working VM; this page then takes you there.')}
${view.problem ? html`<details><summary>What LabLink knows</summary><p class="log-text" id="raw-error">${view.problem}</p></details>` : ''}`;
    case 'released':
      return html`<p id="explanation">${
        view.wiped
          ? 'It is wiped for the next participant, so nothing of yours stays on it and you can no longer connect to it.'
          : 'It cannot wipe itself, so what you left on it stays there until the instructor replaces it, and you may still be able to connect to it: do not use it any more, and tell your instructor if you left anything private on it.'
      }</p>
<p>Its entry stays in your list at <a href="${CRD_ACCESS_URL}" target="_blank" rel="noopener">remotedesktop.google.com/access</a>, shown as offline: you can remove it there.</p>
${askInstructor(view, 'If you still need a VM, they can free one for you; then request it again from the form.')}
<p><a href="/">Back to the form</a></p>`;
    default:
      return '';
  }
}

export function vmPage(options: {
  assignmentId: string;
  view: AssignmentView;
  outcome?: 'existing' | 'retried' | 'done';
  notices?: unknown;
}) {
  const { view, assignmentId } = options;
  const released = view.progress === 'released';
  // Waiting for "Ready" makes sense only on the way there; a failed or broken VM has its own next step above.
  const connecting = view.progress === 'assigned' || view.progress === 'configuring' || view.progress === 'ready';
  return layout(
    `${titleState(view)}: your VM ${view.hostname}`,
    html`<h1>${released ? 'Your VM was taken back' : html`Your VM is <span id="hostname">${view.hostname}</span>`}</h1>
${options.outcome === 'existing' ? html`<p class="muted">You already had this VM; here it is again.</p>` : ''}
${options.outcome === 'retried' ? html`<p class="muted">Your VM is trying again with the new command.</p>` : ''}
${options.outcome === 'done' && released ? html`<p class="ok" id="done">You gave ${view.hostname} back. Thank you!</p>` : ''}
${view.movedFrom ? html`<p class="notice" id="moved">Your previous VM, ${view.movedFrom}, stopped working, so the instructor moved you to ${view.hostname}. It has a new PIN.</p>` : ''}
<p id="progress" data-assignment="${assignmentId}" data-progress="${view.progress}" data-poll-seconds="${vmPagePollSeconds(view.progress) ?? ''}" class="${view.progress === 'ready' ? 'ok' : 'notice'}" role="status" aria-live="polite">${progressMessage(view)}</p>
${options.notices ?? ''}
${stateDetail(view)}
${
  released
    ? ''
    : html`<section class="card" aria-labelledby="details">
  <h2 id="details">Your VM and PIN</h2>
  <div class="pair"><p class="big" id="vm-name">${view.hostname}</p><button type="button" class="secondary" data-copy="vm-name" hidden>Copy name</button></div>
  <p class="muted">PIN</p>
  <div class="pair"><p class="big" id="pin">${view.pin}</p><button type="button" class="secondary" data-copy="pin" hidden>Copy PIN</button></div>
  <p class="muted">Keep this page open or write the PIN down: you type it when you connect.</p>
</section>
${
  connecting
    ? html`<section class="card" aria-labelledby="next">
  <h2 id="next">Next: connect</h2>
  <ol class="steps">
    <li>Wait until this page says <strong>Ready</strong>.</li>
    <li>Open <a href="${CRD_ACCESS_URL}" target="_blank" rel="noopener">remotedesktop.google.com/access</a> with the same Google account as in step 1.</li>
    <li>Click <strong>${view.hostname}</strong> and enter your PIN.</li>
  </ol>
  <p><a href="/vm/${assignmentId}">Check again</a> · <a href="/">Back to the form</a></p>
</section>`
    : ''
}
<p><a class="button secondary" id="done-link" href="/vm/${assignmentId}/done">I'm done with ${view.hostname}</a></p>`
}`,
    { script: 'vm.js', refreshSeconds: vmPageNoScriptRefreshSeconds(view.progress) },
  );
}
