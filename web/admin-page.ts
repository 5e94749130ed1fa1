import { html } from 'hono/html';
import type { LogLevel } from '../contract/wire';
import { VmLogLine } from '../contract/wire';
import { LastCheck } from '../store/go-no-go-checks';
import { VmLogView } from '../store/vm-logs';
import { VM_STATUSES, VmStatus, isProblem, statusDefinition, statusLabel } from '../store/vm-status';
import { VmSummary } from '../store/vms';
import { lastCheckBlock } from './last-check';
import { layout } from './layout';
import { SortKey, VmOrder, elapsedText, timeAgo } from './vm-order';
import { progressPhase, setupFailed } from './vm-progress';

/** What an instructor reads in the State column, the tiles and the CSV: the one vocabulary's label. */
export function stateLabel(vm: Pick<VmSummary, 'status'>): string {
  return statusLabel(vm.status);
}

export function healthLabel(vm: VmSummary): string {
  if (vm.failed_at) return 'failed';
  if (vm.stale) return 'stale';
  if (vm.unhealthy_since) return 'unhealthy';
  return 'ok';
}

function gpuLabel(vm: VmSummary): string {
  if (!vm.gpu_status) return '';
  return vm.gpu_detail ? `${vm.gpu_status}: ${vm.gpu_detail}` : vm.gpu_status;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function when(value: string | null): string {
  return value ? `${value.slice(0, 19).replace('T', ' ')} UTC` : '';
}

export const ADMIN_ACTIONS = ['release', 'move', 'reset', 'rerun-setup'] as const;
export type AdminAction = (typeof ADMIN_ACTIONS)[number];
/** Actions on the whole fleet at once. */
export const FLEET_ACTIONS = ['reset-released', 'end-session'] as const;
export type FleetAction = (typeof FLEET_ACTIONS)[number];

/** The actions that can help a VM in each status; a participant's VM is moved or released, never reset under them. */
const STATUS_ACTIONS: Record<VmStatus, { withParticipant: AdminAction[]; alone: AdminAction[] }> = {
  free: { withParticipant: [], alone: ['reset', 'rerun-setup'] },
  replacing: { withParticipant: [], alone: [] },
  'setup-failed': { withParticipant: ['move', 'release', 'rerun-setup'], alone: ['rerun-setup'] },
  failed: { withParticipant: ['move', 'release'], alone: ['reset'] },
  stopped: { withParticipant: [], alone: [] },
  starting: { withParticipant: [], alone: [] },
  'reset-stuck': { withParticipant: [], alone: ['reset'] },
  resetting: { withParticipant: [], alone: [] },
  checking: { withParticipant: ['release'], alone: [] },
  'participant-stuck': { withParticipant: ['move', 'release'], alone: [] },
  'command-rejected': { withParticipant: ['release'], alone: [] },
  'start-failed': { withParticipant: ['move', 'release'], alone: [] },
  'waiting-for-command': { withParticipant: ['release'], alone: [] },
  stale: { withParticipant: ['move', 'release'], alone: ['reset'] },
  unhealthy: { withParticipant: ['move', 'release'], alone: ['reset'] },
  booting: { withParticipant: [], alone: [] },
  'not-polling': { withParticipant: [], alone: ['rerun-setup'] },
  assigned: { withParticipant: ['move', 'release'], alone: [] },
  configuring: { withParticipant: ['move', 'release'], alone: [] },
  ready: { withParticipant: ['move', 'release', 'rerun-setup'], alone: [] },
};

export function actionsFor(vm: Pick<VmSummary, 'status' | 'email'>): AdminAction[] {
  const actions = STATUS_ACTIONS[vm.status];
  return vm.email ? actions.withParticipant : actions.alone;
}

/** The statuses in which a VM is on its way somewhere: its boot or reset step says how far it got. */
const SHOWS_PROGRESS: readonly VmStatus[] = ['booting', 'not-polling', 'setup-failed', 'resetting', 'reset-stuck', 'starting'];

const ACTION_LABEL: Record<AdminAction, string> = {
  release: 'Release and reset',
  move: 'Move participant',
  reset: 'Reset and return to pool',
  'rerun-setup': 'Re-run setup',
};
const FLEET_ACTION_LABEL: Record<FleetAction, string> = {
  'reset-released': 'Reset all released VMs',
  'end-session': 'End of session: release and reset every VM',
};

/** A time as "40 s ago", the exact time in its tooltip and markup. */
function ago(value: string | null, now: number) {
  return value ? html`<time datetime="${value}" title="${when(value)}">${timeAgo(value, now)}</time>` : '';
}

/** The VM's phase (booting → installing desktop → setup script → check → ready), its step, and how long it has been at it. */
function progress(vm: VmSummary, now: number) {
  if (!SHOWS_PROGRESS.includes(vm.status)) return vm.setup_rerun_requested_at ? html`<small>(re-run asked)</small>` : '';
  const phase = progressPhase(vm.step);
  const since = vm.step_at ? elapsedText(Math.max(0, Math.round((now - Date.parse(vm.step_at)) / 1000))) : '';
  return html`<span class="progress progress-${phase.replace(' ', '-')}">${phase}</span>${vm.step ? html` <small>${vm.step}${since ? ` · ${since}` : ''}</small>` : ''}${
    vm.setup_rerun_requested_at ? html` <small>(re-run asked)</small>` : ''
  }`;
}

/** What the instructor reads in the Problem column: the status's meaning and next step, then the VM's own reason, folded. */
function problemText(vm: VmSummary) {
  const definition = statusDefinition(vm.status);
  if (!definition.problem && vm.status !== 'command-rejected') return '';
  const reason =
    vm.status === 'command-rejected' || vm.status === 'start-failed' || vm.status === 'participant-stuck' ? vm.error : vm.failure;
  return html`${definition.next}${reason ? html`<details><summary>Reason</summary><span class="log-text">${reason}</span></details>` : ''}`;
}

function row(vm: VmSummary, now: number) {
  const health = healthLabel(vm);
  const problem = isProblem(vm.status);
  return html`<tr data-hostname="${vm.hostname}" data-status="${vm.status}"${problem ? html` class="problem"` : ''}>
  <th scope="row">${vm.hostname}${vm.spare ? html` <small title="${vm.replaced_instance_id ? `replaced ${vm.replaced_instance_id}` : ''}">spare</small>` : ''}</th>
  <td class="state${problem ? ' state-error' : ''}" title="${statusDefinition(vm.status).next}">${stateLabel(vm)}${vm.replacement_requested_at ? html` <small>since ${ago(vm.replacement_requested_at, now)}</small>` : ''}</td>
  <td>${vm.email ?? ''}</td>
  <td class="state health-${health}">${health}${vm.reboot_count > 0 ? ` (${plural(vm.reboot_count, 'reboot')})` : ''}</td>
  <td>${progress(vm, now)}</td>
  <td data-filter-skip><a href="/admin/vms/${vm.hostname}/logs"${vm.log_errors > 0 ? html` class="state state-error"` : ''}>${vm.log_errors > 0 ? plural(vm.log_errors, 'log error') : html`<span class="muted">log</span>`}</a></td>
  <td>${gpuLabel(vm)}</td>
  <td>${vm.in_use === null ? '' : vm.in_use ? 'yes' : 'no'}</td>
  <td class="when">${ago(vm.assigned_at, now)}</td>
  <td class="when">${ago(vm.health_reported_at ?? vm.last_seen, now)}</td>
  <td class="problem-text">${problemText(vm)}</td>
  <td class="actions" data-filter-skip>${actionsFor(vm).map((action) => html`<a href="/admin/vms/${vm.hostname}/${action}">${ACTION_LABEL[action]}</a> `)}${
    vm.email
      ? html`<a href="/admin/vms/${vm.hostname}/handover" title="Hand the VM to a new browser with a one-time link">Hand over</a>`
      : ''
  }</td>
</tr>`;
}

export function vmRows(vms: VmSummary[], now = Date.now()) {
  return html`${vms.map((vm) => row(vm, now))}`;
}

/** How many VMs are in each status; what the tiles, the summary and the tests read. */
export function statusCounts(vms: Pick<VmSummary, 'status'>[]): Map<VmStatus, number> {
  const counts = new Map<VmStatus, number>();
  for (const vm of vms) counts.set(vm.status, (counts.get(vm.status) ?? 0) + 1);
  return counts;
}

/** Counts by status, problems first and marked, then the life cycle in the vocabulary's order; statuses with no VM are left out. */
function tiles(vms: VmSummary[]) {
  const counts = statusCounts(vms);
  const shown = [...VM_STATUSES.filter(isProblem), ...VM_STATUSES.filter((status) => !isProblem(status))].filter((status) =>
    counts.has(status),
  );
  return html`${shown.map(
    (status) =>
      html`<li class="tile${isProblem(status) ? ' tile-problem' : ''}" data-status="${status}" title="${statusDefinition(status).next}"><span class="tile-count">${counts.get(status)}</span> <span class="tile-label">${statusLabel(status)}</span></li>`,
  )}`;
}

function summary(vms: VmSummary[]): string {
  const counts = statusCounts(vms);
  const parts = [`${vms.length} VMs`, `${counts.get('free') ?? 0} free`];
  for (const status of ['booting', ...VM_STATUSES.filter(isProblem)] as VmStatus[])
    if (counts.has(status)) parts.push(`${counts.get(status)} ${statusLabel(status)}`);
  return parts.join(', ');
}

function timeLeft(expiresAt: string): string {
  const minutes = Math.round((Date.parse(expiresAt) - Date.now()) / 60_000);
  if (minutes <= 0) return `The fleet was scheduled to stop at ${when(expiresAt)}.`;
  return `The fleet stops at ${when(expiresAt)} (in ${Math.floor(minutes / 60)} h ${minutes % 60} min).`;
}

/** The parts of the dashboard its script refreshes, already in the page's order. */
export function adminRowsFragment(vms: VmSummary[]): { rows: string; summary: string; tiles: string } {
  return { rows: vmRows(vms).toString(), summary: summary(vms), tiles: tiles(vms).toString() };
}

const COLUMNS: { label: string; sort?: SortKey }[] = [
  { label: 'VM', sort: 'hostname' },
  { label: 'State', sort: 'state' },
  { label: 'Participant', sort: 'email' },
  { label: 'Health', sort: 'health' },
  { label: 'Progress' },
  { label: 'Log' },
  { label: 'GPU' },
  { label: 'In use' },
  { label: 'Assigned', sort: 'assigned' },
  { label: 'Last heard', sort: 'seen' },
  { label: 'Problem' },
  { label: 'Actions' },
];

/** A sortable column's header links to the page sorted by it; the sorted one says which way and links to the other. */
function header(column: (typeof COLUMNS)[number], order: VmOrder) {
  if (!column.sort) return html`<th scope="col">${column.label}</th>`;
  const sorted = column.sort === order.key;
  const next = sorted && order.direction === 'asc' ? 'desc' : 'asc';
  const arrow = sorted ? (order.direction === 'asc' ? ' ▲' : ' ▼') : '';
  return html`<th scope="col"${sorted ? html` aria-sort="${order.direction === 'asc' ? 'ascending' : 'descending'}"` : ''}><a class="sort" href="/admin?sort=${column.sort}&amp;dir=${next}">${column.label}<span aria-hidden="true">${arrow}</span></a></th>`;
}

export function adminPage(options: {
  vms: VmSummary[];
  order: VmOrder;
  notice?: string;
  expiresAt?: string;
  lastCheck?: LastCheck;
  sections?: unknown;
}) {
  const base = summary(options.vms);
  return layout(
    'Admin',
    html`<h1>LabLink VMs</h1>
${options.notice ? html`<p class="ok" role="status">${options.notice}</p>` : ''}
${options.expiresAt ? html`<p class="notice" id="expiry">${timeLeft(options.expiresAt)}</p>` : ''}
${lastCheckBlock(options.lastCheck)}
<ul class="tiles" id="tiles" aria-label="VMs by state">${tiles(options.vms)}</ul>
${options.sections ?? ''}
<p id="summary" data-base="${base}" aria-live="polite">${base}</p>
<label for="filter">Filter</label>
<input id="filter" type="search" placeholder="VM name, state, health or email">
<p><a href="/api/vms.csv">Download all assignments (CSV)</a> · <a href="/admin/report">After the workshop: report (CSV, JSON)</a></p>
<p>Whole fleet: ${FLEET_ACTIONS.map((action, index) => html`${index > 0 ? ' · ' : ''}<a href="/admin/fleet/${action}">${FLEET_ACTION_LABEL[action]}</a>`)}</p>
<div class="table-wrap" tabindex="0" role="region" aria-label="VMs (scrolls sideways)">
<table class="vms">
  <thead><tr>${COLUMNS.map((column) => header(column, options.order))}</tr></thead>
  <tbody id="vm-rows">${vmRows(options.vms)}</tbody>
</table>
</div>`,
    { wide: true, script: 'admin.js' },
  );
}

const RESET_EXPLAINED = html`<p>Its agent stops Chrome Remote Desktop, ends the desktop session, deletes the host registration and the user's temporary files, and recreates the desktop user's home from scratch; only then is the VM free again. A VM whose reset fails is marked failed with the reason.</p>`;

const CONFIRM_TEXT: Record<AdminAction, (vm: VmSummary) => unknown> = {
  release: (vm) =>
    html`<p>${vm.email ? html`It is assigned to <strong>${vm.email}</strong> (${stateLabel(vm)}).` : html`It is ${stateLabel(vm)}.`} Releasing it takes it back and resets it for the next participant; their page tells them.</p>
  ${RESET_EXPLAINED}`,
  move: (vm) =>
    html`<p><strong>${vm.email}</strong> gets a free VM with a new PIN; ${vm.hostname} is reset and returns to the pool by itself${vm.failed_at ? ' once it is repaired (it is marked failed)' : ''}. Their VM page tells them to submit a new command from step 1 with the same email.</p>`,
  reset: (vm) =>
    html`<p>${vm.hostname} is ${stateLabel(vm)}${vm.failure ? `, failed: ${vm.failure}` : ''}. Resetting it clears its failure mark and returns it to the pool.</p>
  ${RESET_EXPLAINED}`,
  'rerun-setup': (vm) =>
    html`<p>${vm.hostname}'s agent runs the workshop's setup again (repository, container image, setup script, check) when it next reports, within a minute, and takes no new participant until it passes. ${
      setupFailed(vm.failure) ? html`It failed: ${vm.failure}. If it passes now, the VM returns to the pool.` : ''
    }</p>
  ${participantConnected(vm) ? html`<p class="notice" id="connected"><strong>${vm.email ?? 'A participant'}</strong> ${vm.in_use ? 'is connected to' : 'has'} this VM: the setup runs while they ${vm.in_use ? 'work' : 'may be connecting'}, and may change or restart what they use.</p>` : ''}`,
};

/** Someone has the VM, or its agent says it is in use: a re-run of the setup needs the admin's confirmation. */
export function participantConnected(vm: Pick<VmSummary, 'email' | 'in_use'>): boolean {
  return vm.email !== null || vm.in_use === true;
}

/** Asks before an action; Cancel comes first and has the focus, so Enter does nothing harmful. */
export function confirmPage(title: string, text: unknown, postUrl: string, label: string, warning?: string, confirmed = false) {
  return layout(
    title,
    html`<h1>${title}</h1>
<section class="card">
  ${text}
  ${warning ? html`<p class="notice" id="warning">${warning}</p>` : ''}
  <form method="post" action="${postUrl}" class="pair">
    ${confirmed ? html`<input type="hidden" name="confirm" value="yes">` : ''}
    <a class="button secondary" href="/admin" autofocus>Cancel</a>
    <button type="submit" class="danger">${label}</button>
  </form>
</section>`,
  );
}

/** An action that could not be done: what happened, that nothing changed, and what to do next. */
export function actionRefusedPage(hostname: string, action: AdminAction, refusal: { title: string; message: string; next?: string }) {
  return layout(
    refusal.title,
    html`<h1>${refusal.title}</h1>
<section class="card">
  <p>${refusal.message} Nothing was changed.</p>
  ${refusal.next ? html`<p>${refusal.next}</p>` : ''}
  <p class="pair"><a class="button" href="/admin" autofocus>Back to all VMs</a> <a href="/admin/vms/${hostname}/${action}">Try again</a></p>
</section>`,
  );
}

export function actionConfirmPage(vm: VmSummary, action: AdminAction, warning?: string) {
  // Submitting this page, which names the connected participant, is the confirmation a re-run needs.
  const confirmed = action === 'rerun-setup' && participantConnected(vm);
  return confirmPage(
    `${ACTION_LABEL[action]}: ${vm.hostname}?`,
    CONFIRM_TEXT[action](vm),
    `/admin/vms/${vm.hostname}/${action}`,
    ACTION_LABEL[action],
    warning,
    confirmed,
  );
}

/** The VMs each fleet action would take; what its confirmation page counts. */
export function fleetActionTargets(vms: VmSummary[], action: FleetAction): VmSummary[] {
  return action === 'end-session' ? vms : vms.filter((vm) => !vm.email && (vm.failed_at !== null || vm.state === 'resetting'));
}

export function fleetConfirmPage(vms: VmSummary[], action: FleetAction) {
  const targets = fleetActionTargets(vms, action);
  const withParticipant = targets.filter((vm) => vm.email).length;
  const text =
    action === 'end-session'
      ? html`<p>All ${plural(targets.length, 'VM')} are taken back${withParticipant ? html`, <strong>${plural(withParticipant, 'participant')}</strong> among them lose their VM (their pages tell them)` : ''}, and every VM is reset for the next session.</p>${RESET_EXPLAINED}`
      : html`<p>${plural(targets.length, 'VM')} without a participant ${targets.length === 1 ? 'is' : 'are'} out of the pool (failed, or still resetting)${targets.length ? `: ${targets.map((vm) => vm.hostname).join(', ')}` : ''}. Each is reset and returned to the pool.</p>${RESET_EXPLAINED}`;
  return confirmPage(`${FLEET_ACTION_LABEL[action]}?`, text, `/admin/fleet/${action}`, FLEET_ACTION_LABEL[action]);
}

function logTable(heading: string, lines: VmLogLine[]) {
  return html`<h2>${heading}</h2>
<table class="log">
  <thead><tr><th scope="col">Time</th><th scope="col">Level</th><th scope="col">From</th><th scope="col">Line</th></tr></thead>
  <tbody>${lines.map(
    (line) =>
      html`<tr class="level-${line.level}"><td class="when">${when(line.at)}</td><td class="level">${line.level}</td><td>${line.source}</td><td class="log-text">${line.text}</td></tr>`,
  )}</tbody>
</table>`;
}

/** One VM's stored log: its errors first, then every line as it came; or only the lines of `level`. */
export function vmLogPage(view: VmLogView, level?: LogLevel) {
  const base = `/admin/vms/${view.hostname}/logs`;
  const errors = view.lines.filter((line) => line.level === 'error');
  const current = (shown: LogLevel | undefined) => (shown === level ? html` aria-current="page"` : '');
  let body;
  if (view.lines.length === 0) body = html`<p>${level ? `No ${level} lines.` : 'No lines yet.'}</p>`;
  else if (level) body = logTable(`Only ${level} lines (${view.lines.length})`, view.lines);
  else
    body = html`${errors.length > 0 ? logTable(`Errors (${errors.length})`, errors) : html`<p>No errors.</p>`}${logTable(`All lines, oldest first (${view.lines.length})`, view.lines)}`;
  return layout(
    `Log of ${view.hostname}`,
    html`<h1>Log of ${view.hostname}</h1>
<p><a href="/admin">All VMs</a></p>
<p>Step: <strong>${view.step ?? 'none reported yet'}</strong>${view.stepAt ? ` (since ${when(view.stepAt)})` : ''}. The last lines of the VM's boot log and of its agent are kept.</p>
<nav aria-label="Log views"><a href="${base}"${current(undefined)}>All lines</a> · <a href="${base}?level=error"${current('error')}>Errors only</a> · <a href="${base}.txt">Download as text</a></nav>
${body}`,
    { wide: true },
  );
}
