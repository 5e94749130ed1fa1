import { html } from 'hono/html';
import { ParticipantReport, WorkshopReport } from '../store/workshop-report';
import { csvLines } from './csv';
import { layout } from './layout';
import { elapsedText } from './vm-order';

const CSV_COLUMNS = [
  'email',
  'vms',
  'submitted_at',
  'seconds_to_ready',
  'seconds_to_connect',
  'vm_hours',
  'waiting_seconds',
  'failures',
  'resets',
  'moves',
  'estimated_cost_usd',
] as const satisfies readonly (keyof ParticipantReport)[];

/** The report as a spreadsheet: one line per participant, durations in seconds; empty cells are unknown (never ready, never connected, never waited). */
export function workshopReportCsv(report: WorkshopReport): string {
  return csvLines(
    CSV_COLUMNS,
    report.participants.map((participant) => CSV_COLUMNS.map((column) => participant[column])),
  );
}

const duration = (seconds: number | null) => (seconds === null ? html`<span class="muted">–</span>` : elapsedText(seconds));
const dollars = (usd: number | null) => (usd === null ? '' : `$${usd.toFixed(2)}`);

export function workshopReportPage(report: WorkshopReport) {
  const { totals } = report;
  return layout(
    'After the workshop',
    html`<h1>After the workshop</h1>
<p><a href="/admin">All VMs</a> · <a href="/api/report.csv">Download (CSV)</a> · <a href="/api/report">Download (JSON)</a></p>
<p id="report-totals">${totals.participants} participant${totals.participants === 1 ? '' : 's'}, ${totals.vmHours.toFixed(1)} VM-hours${
      totals.estimatedCostUsd === null ? '' : html`, about <strong>${dollars(totals.estimatedCostUsd)}</strong> of VM time`
    }. Priced as ${report.price.source}. VM-hours count from assignment to release; free and stopped VMs, the database and the allocator cost on top (see the README's rough cost).</p>
<div class="table-wrap" tabindex="0" role="region" aria-label="Participants (scrolls sideways)">
<table class="vms" id="report">
  <thead><tr><th scope="col">Participant</th><th scope="col">VMs</th><th scope="col">To ready</th><th scope="col">To first connection</th><th scope="col">VM-hours</th><th scope="col">Waiting line</th><th scope="col">Failures</th><th scope="col">Resets</th><th scope="col">Moves</th><th scope="col">Estimated cost</th></tr></thead>
  <tbody>${report.participants.map(
    (participant) =>
      html`<tr data-email="${participant.email}"><th scope="row">${participant.email}</th><td>${participant.vms}</td><td>${duration(participant.seconds_to_ready)}</td><td>${duration(
        participant.seconds_to_connect,
      )}</td><td>${participant.vm_hours.toFixed(2)}</td><td>${duration(participant.waiting_seconds)}</td><td>${participant.failures}</td><td>${participant.resets}</td><td>${participant.moves}</td><td>${dollars(
        participant.estimated_cost_usd,
      )}</td></tr>`,
  )}</tbody>
</table>
</div>
<p>Times count from the participant's first submission (or from joining the waiting line). A reset is an assignment of theirs that ended: its VM was taken back and wiped.</p>`,
    { wide: true },
  );
}
