import { ADMIN_POLL_SECONDS } from '../page-polling';
import { POLLER } from './poller';

// Live refresh of the dashboard (rows in the page's order, tiles, summary; while it is shown) and
// an in-place filter; the page is complete without it.
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
  function apply() {
    var q = filter.value.trim().toLowerCase();
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var match = !q || row.textContent.toLowerCase().indexOf(q) >= 0;
      row.hidden = !match;
      if (match) shown += 1;
    });
    summary.textContent = summary.dataset.base + (q ? ', ' + shown + ' shown' : '');
  }
  var every = ${ADMIN_POLL_SECONDS * 1000};
  lablinkPoll(function (done) {
    fetch('/admin/rows?' + query.toString(), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        body.innerHTML = data.rows;
        tiles.innerHTML = data.tiles;
        summary.dataset.base = data.summary;
        apply();
      })
      .catch(function () {})
      .then(function () { done(every); });
  }, every);
  filter.addEventListener('input', apply);
})();
`;
