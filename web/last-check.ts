import { html } from 'hono/html';
import { verdictLine } from '../core/go-no-go';
import { LastCheck } from '../store/go-no-go-checks';
import { timeAgo } from './vm-order';

/** The dashboard's line on the last `npm run check`: its verdict, when, and what failed. */
export function lastCheckBlock(check: LastCheck | undefined, now = Date.now()) {
  if (!check)
    return html`<p class="notice" id="last-check">No go / no-go check has run yet: run <code>npm run check</code> the day before the workshop.</p>`;
  const failures = check.lines.filter((line) => line.status === 'FAIL');
  return html`<div class="${check.go ? 'ok' : 'notice'}" id="last-check">
<p>Last check: <strong>${verdictLine(check)}</strong>, <time datetime="${check.checkedAt}">${timeAgo(check.checkedAt, now)}</time> (${check.checkedAt.slice(0, 19).replace('T', ' ')} UTC).</p>
${failures.length > 0 ? html`<ul>${failures.map((line) => html`<li>${line.name}: ${line.message}${line.action ? ` — ${line.action}` : ''}</li>`)}</ul>` : ''}
</div>`;
}
