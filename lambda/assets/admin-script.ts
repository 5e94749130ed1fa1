// Live refresh of the dashboard from the server-rendered rows, then filter and sort in place; the table is complete without it.
export const ADMIN_SCRIPT = `(function () {
  var body = document.getElementById('vm-rows');
  var filter = document.getElementById('filter');
  var summary = document.getElementById('summary');
  if (!body || !filter || !summary) return;
  var sortKey = 'hostname';
  function apply() {
    var q = filter.value.trim().toLowerCase();
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.dataset[sortKey] || '', y = b.dataset[sortKey] || '';
      if (sortKey === 'hostname') return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    var shown = 0;
    rows.forEach(function (row) {
      var match = !q || row.textContent.toLowerCase().indexOf(q) >= 0;
      row.hidden = !match;
      if (match) shown += 1;
      body.appendChild(row);
    });
    summary.textContent = summary.dataset.base + (q ? ', ' + shown + ' shown' : '');
  }
  function refresh() {
    fetch('/admin/rows', { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (!data) return; body.innerHTML = data.rows; summary.dataset.base = data.summary; apply(); })
      .catch(function () {});
  }
  filter.addEventListener('input', apply);
  document.querySelectorAll('th button[data-sort]').forEach(function (b) {
    b.addEventListener('click', function () { sortKey = b.getAttribute('data-sort'); apply(); });
  });
  setInterval(refresh, 5000);
})();
`;
