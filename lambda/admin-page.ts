import { html } from 'hono/html';
import { VmSummary } from '../core/vms';
import { layout } from './layout';

/** What an instructor reads in the State column. */
export function stateLabel(vm: Pick<VmSummary, 'state' | 'polling'>): string {
  if (vm.state === 'waiting') return vm.polling ? 'free' : 'not polling';
  if (vm.state === 'delivered') return 'configuring';
  if (vm.state === 'configured') return 'ready';
  return vm.state;
}

function stateClass(vm: VmSummary): string {
  if (vm.state === 'waiting' && !vm.polling) return 'state-stale';
  return `state-${vm.state}`;
}

function when(value: string | null): string {
  return value ? `${value.slice(0, 19).replace('T', ' ')} UTC` : '';
}

function row(vm: VmSummary) {
  const releasable = vm.state !== 'waiting';
  return html`<tr>
  <td>${vm.hostname}</td>
  <td class="state ${stateClass(vm)}">${stateLabel(vm)}</td>
  <td>${vm.email ?? ''}</td>
  <td>${when(vm.assigned_at)}</td>
  <td>${when(vm.last_seen)}</td>
  <td>${vm.error ?? ''}</td>
  <td>${releasable ? html`<a href="/admin/vms/${vm.hostname}/release">Release</a>` : ''}</td>
</tr>`;
}

// Live refresh, filter and sort; the table is complete without it.
const ADMIN_SCRIPT = `
(function () {
  var body = document.getElementById('vm-rows');
  var filter = document.getElementById('filter');
  var summary = document.getElementById('summary');
  var sortKey = 'hostname', vms = null;
  function label(vm) {
    if (vm.state === 'waiting') return vm.polling ? 'free' : 'not polling';
    if (vm.state === 'delivered') return 'configuring';
    if (vm.state === 'configured') return 'ready';
    return vm.state;
  }
  function when(v) { return v ? v.slice(0, 19).replace('T', ' ') + ' UTC' : ''; }
  function cell(text, className) { var td = document.createElement('td'); td.textContent = text || ''; if (className) td.className = className; return td; }
  function render() {
    if (!vms) return;
    var q = filter.value.trim().toLowerCase();
    var shown = vms.filter(function (vm) { return !q || [vm.hostname, label(vm), vm.email || '', vm.error || ''].join(' ').toLowerCase().indexOf(q) >= 0; });
    shown.sort(function (a, b) {
      var x = sortKey === 'state' ? label(a) : (a[sortKey] || ''), y = sortKey === 'state' ? label(b) : (b[sortKey] || '');
      if (sortKey === 'hostname') return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    body.textContent = '';
    shown.forEach(function (vm) {
      var tr = document.createElement('tr');
      tr.appendChild(cell(vm.hostname));
      tr.appendChild(cell(label(vm), 'state ' + (vm.state === 'waiting' && !vm.polling ? 'state-stale' : 'state-' + vm.state)));
      tr.appendChild(cell(vm.email));
      tr.appendChild(cell(when(vm.assigned_at)));
      tr.appendChild(cell(when(vm.last_seen)));
      tr.appendChild(cell(vm.error));
      var action = cell('');
      if (vm.state !== 'waiting') {
        var a = document.createElement('a'); a.href = '/admin/vms/' + encodeURIComponent(vm.hostname) + '/release'; a.textContent = 'Release';
        action.appendChild(a);
      }
      tr.appendChild(action);
      body.appendChild(tr);
    });
    var free = vms.filter(function (vm) { return label(vm) === 'free'; }).length;
    summary.textContent = vms.length + ' VMs, ' + free + ' free' + (q ? ', ' + shown.length + ' shown' : '');
  }
  function refresh() {
    fetch('/api/vms', { headers: { accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { vms = data.vms; render(); } })
      .catch(function () {});
  }
  filter.addEventListener('input', render);
  document.querySelectorAll('th button[data-sort]').forEach(function (b) {
    b.addEventListener('click', function () { sortKey = b.getAttribute('data-sort'); render(); });
  });
  refresh();
  setInterval(refresh, 5000);
})();`;

export function adminPage(options: { vms: VmSummary[]; notice?: string }) {
  const free = options.vms.filter((vm) => stateLabel(vm) === 'free').length;
  return layout(
    'Admin',
    html`<h1>LabLink VMs</h1>
${options.notice ? html`<p class="ok" role="status">${options.notice}</p>` : ''}
<p id="summary" aria-live="polite">${options.vms.length} VMs, ${free} free</p>
<label for="filter">Filter</label>
<input id="filter" type="search" placeholder="VM name, state or email">
<p><a href="/api/vms.csv">Download all assignments (CSV)</a></p>
<div class="table-wrap">
<table>
  <thead><tr>
    <th scope="col"><button type="button" data-sort="hostname">VM</button></th>
    <th scope="col"><button type="button" data-sort="state">State</button></th>
    <th scope="col"><button type="button" data-sort="email">Participant</button></th>
    <th scope="col"><button type="button" data-sort="assigned_at">Assigned</button></th>
    <th scope="col"><button type="button" data-sort="last_seen">Last seen</button></th>
    <th scope="col">Problem</th>
    <th scope="col">Action</th>
  </tr></thead>
  <tbody id="vm-rows">${options.vms.map(row)}</tbody>
</table>
</div>`,
    { wide: true, script: ADMIN_SCRIPT },
  );
}

export function releaseConfirmPage(vm: VmSummary) {
  return layout(
    `Release ${vm.hostname}`,
    html`<h1>Release ${vm.hostname}?</h1>
<section class="card">
  <p>${vm.email ? html`It is assigned to <strong>${vm.email}</strong> (${stateLabel(vm)}).` : html`It is ${stateLabel(vm)}.`}
  Releasing it makes it free for the next participant.</p>
  ${vm.state === 'configured' ? html`<p class="notice">Chrome Remote Desktop on this VM is already set up for ${vm.email}; they can still connect to it until the VM is restarted or replaced.</p>` : ''}
  <form method="post" action="/admin/vms/${vm.hostname}/release">
    <button type="submit" class="danger">Release ${vm.hostname}</button>
    <a href="/admin">Cancel</a>
  </form>
</section>`,
  );
}
