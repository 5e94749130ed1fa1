import { POLLER } from './poller';

// Keeps a participant's VM page true while it is open: when the state changes (ready, failed,
// stopped working, taken back, moved to another VM) it loads the page again, which the server
// renders with the right message and next step. It asks as often as the page's data-poll-seconds
// says (often while the VM is on its way, rarely once settled, never once taken back) and only
// while the page is shown; meanwhile it counts the setup's elapsed time and
// shows the "taking longer than usual" note, and counts down to the workshop's end (warning 10
// minutes before). It makes the copy buttons work. The page works
// without it (a <noscript> refresh). The page passes its data in data- attributes.
export const VM_SCRIPT = `${POLLER}
(function () {
  var status = document.getElementById('progress');
  if (!status) return;
  var assignmentId = status.getAttribute('data-assignment');
  var shown = status.getAttribute('data-progress');
  function copy(id) {
    var text = document.getElementById(id).textContent;
    if (navigator.clipboard) navigator.clipboard.writeText(text).catch(function () {});
  }
  document.querySelectorAll('[data-copy]').forEach(function (button) {
    button.hidden = false;
    button.addEventListener('click', function () { copy(button.getAttribute('data-copy')); button.textContent = 'Copied'; });
  });
  var elapsed = document.getElementById('elapsed');
  if (elapsed) {
    var started = Date.now() - 1000 * Number(elapsed.getAttribute('data-elapsed'));
    var slowAfter = Number(elapsed.getAttribute('data-slow-after'));
    var time = document.getElementById('elapsed-time');
    var slow = document.getElementById('slow');
    setInterval(function () {
      var seconds = Math.floor((Date.now() - started) / 1000);
      var minutes = Math.floor(seconds / 60);
      time.textContent = minutes > 0 ? minutes + ' min ' + (seconds % 60) + ' s' : seconds + ' s';
      if (seconds >= slowAfter) slow.hidden = false;
    }, 1000);
  }
  var expiry = document.getElementById('expiry');
  if (expiry && expiry.hasAttribute('data-seconds-left')) {
    var ends = Date.now() + 1000 * Number(expiry.getAttribute('data-seconds-left'));
    var warnSeconds = Number(expiry.getAttribute('data-warn-seconds'));
    var countDown = function () {
      var left = Math.max(0, Math.ceil((ends - Date.now()) / 60000));
      var words = left >= 60 ? Math.floor(left / 60) + ' h ' + (left % 60) + ' min' : left + ' min';
      document.getElementById('expiry-left').textContent = words;
      document.getElementById('expiry-warning-left').textContent = words;
      if (ends - Date.now() <= 1000 * warnSeconds) document.getElementById('expiry-warning').hidden = false;
    };
    setInterval(countDown, 15000);
  }
  var every = 1000 * Number(status.getAttribute('data-poll-seconds'));
  if (!every) return;
  lablinkPoll(function (done) {
    fetch('/api/assignment/' + encodeURIComponent(assignmentId), { headers: { accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        // Refused or failed (a 429 too): ask again, later than usual.
        if (!data) return done(2 * every);
        if (data.assignment !== assignmentId) return location.replace('/vm/' + data.assignment);
        if (data.progress !== shown) return location.reload();
        done(every);
      })
      .catch(function () { done(2 * every); });
  }, every);
})();
`;
