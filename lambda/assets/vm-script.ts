// Follows the agent's progress on a participant's VM page until ready or failed, and makes the copy
// buttons work; the page works without it ("Check again"). The page passes its data in data- attributes.
export const VM_SCRIPT = `(function () {
  var status = document.getElementById('progress');
  var detail = document.getElementById('progress-detail');
  if (!status || !detail) return;
  var assignmentId = status.getAttribute('data-assignment');
  var failureAdvice = detail.getAttribute('data-failure-advice') || '';
  function copy(id) {
    var text = document.getElementById(id).textContent;
    if (navigator.clipboard) navigator.clipboard.writeText(text).catch(function () {});
  }
  document.querySelectorAll('[data-copy]').forEach(function (button) {
    button.hidden = false;
    button.addEventListener('click', function () { copy(button.getAttribute('data-copy')); button.textContent = 'Copied'; });
  });
  function refresh() {
    fetch('/api/assignment/' + encodeURIComponent(assignmentId), { headers: { accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        if (data.assignment !== assignmentId) { location.replace('/vm/' + data.assignment); return; }
        status.textContent = data.message;
        status.setAttribute('data-progress', data.progress);
        status.className = data.progress === 'ready' ? 'ok' : 'notice';
        detail.textContent = data.progress === 'failed' ? (data.error ? data.error + ' ' : '') + failureAdvice : '';
        if (data.progress !== 'ready' && data.progress !== 'failed' && data.progress !== 'released') setTimeout(refresh, 2000);
      })
      .catch(function () { setTimeout(refresh, 5000); });
  }
  refresh();
})();
`;
