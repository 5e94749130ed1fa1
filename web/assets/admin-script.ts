import { ADMIN_POLL_SECONDS } from '../../contract/page-polling';
import { POLLER } from './poller';

// Live refresh of the dashboard (rows in the page's order, tiles, summary, waiting line; while it is shown) and
// an in-place filter; the page is complete without it. Only the cells whose content changed are
// replaced, so the keyboard focus and the scroll stay where they were; the summary (a polite live
// region) changes only when the counts do.
export const ADMIN_SCRIPT = `${POLLER}
(function () {
  var body = document.getElementById('vm-rows');
  var filter = document.getElementById('filter');
  var summary = document.getElementById('summary');
  var tiles = document.getElementById('tiles');
  if (!body || !filter || !summary || !tiles) return;
  var order = new URLSearchParams(location.search);
  var query = new URLSearchParams();
  ['sort', 'dir'].forEach(function (name) { if (order.get(name)) query.set(name, order.get(name)); });
  // What the server last sent for each cell: a folded-open reason or a hidden row must not count as a change.
  function remember(row) { Array.prototype.forEach.call(row.cells, function (cell) { cell.dataset.sent = cell.innerHTML; }); }
  Array.prototype.forEach.call(body.rows, remember);
  // The words a row is found by: not its log link or its actions, which every row has.
  function searchable(row) {
    return Array.prototype.filter.call(row.cells, function (cell) { return !cell.hasAttribute('data-filter-skip'); })
      .map(function (cell) { return cell.textContent; }).join(' ').toLowerCase();
  }
  function apply() {
    var q = filter.value.trim().toLowerCase();
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var match = !q || searchable(row).indexOf(q) >= 0;
      row.hidden = !match;
      if (match) shown += 1;
    });
    var text = summary.dataset.base + (q ? ', ' + shown + ' shown' : '');
    if (summary.textContent !== text) summary.textContent = text;
  }
  function copyAttributes(from, to) {
    Array.prototype.forEach.call(from.attributes, function (attribute) { if (attribute.name !== 'data-sent') to.setAttribute(attribute.name, attribute.value); });
  }
  /** Brings a row up to date cell by cell; a focused link whose cell changed is found again by its address. */
  function sync(row, fresh) {
    copyAttributes(fresh, row);
    if (!fresh.hasAttribute('class')) row.removeAttribute('class');
    Array.prototype.forEach.call(fresh.cells, function (cell, index) {
      var old = row.cells[index];
      if (old && old.dataset.sent === cell.innerHTML) return;
      var focused = old && old.contains(document.activeElement) ? document.activeElement.getAttribute('href') : null;
      var copy = cell.cloneNode(true);
      copy.dataset.sent = cell.innerHTML;
      if (old) row.replaceChild(copy, old); else row.appendChild(copy);
      if (focused) {
        var again = copy.querySelector('[href="' + focused + '"]');
        if (again) again.focus();
      }
    });
  }
  function update(rowsHtml) {
    var template = document.createElement('tbody');
    template.innerHTML = rowsHtml;
    var existing = {};
    Array.prototype.forEach.call(body.rows, function (row) { existing[row.getAttribute('data-hostname')] = row; });
    Array.prototype.slice.call(template.rows).forEach(function (fresh, index) {
      var row = existing[fresh.getAttribute('data-hostname')];
      delete existing[fresh.getAttribute('data-hostname')];
      if (row) sync(row, fresh); else { row = fresh; remember(row); }
      if (body.rows[index] !== row) body.insertBefore(row, body.rows[index] || null);
    });
    Object.keys(existing).forEach(function (name) { existing[name].remove(); });
  }
  // Replaced only when the server's text changes, so a screen reader is not told the same count again.
  var lineSent = null;
  function updateLine(lineHtml) {
    var line = document.getElementById('waiting-line');
    if (!line || lineHtml === lineSent) return;
    line.outerHTML = lineHtml;
    lineSent = lineHtml;
  }
  var every = ${ADMIN_POLL_SECONDS * 1000};
  lablinkPoll(function (done) {
    fetch('/admin/rows?' + query.toString(), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        update(data.rows);
        if (tiles.innerHTML !== data.tiles) tiles.innerHTML = data.tiles;
        updateLine(data.line);
        summary.dataset.base = data.summary;
        apply();
      })
      .catch(function () {})
      .then(function () { done(every); });
  }, every);
  filter.addEventListener('input', apply);
})();
`;
