import { POLLER } from './poller';

// Keeps a participant's VM page true while it is open: when the state changes (ready, failed,
// stopped working, taken back) it fetches the page the server renders for the new state and puts
// it in place around the status line, a polite live region whose new words a screen reader reads,
// and takes the new title (moved to another VM: it opens the new VM's page). It asks as often as
// the status line's data-poll-seconds says (often while the VM is on its way, rarely once settled,
// never once taken back) and only while the page is shown; meanwhile it counts the setup's elapsed
// time and shows the "taking longer than usual" note, and counts down to the workshop's end
// (warning 10 minutes before). It makes the copy buttons work. The page
// works without it (a <noscript> refresh). The page passes its data in data- attributes.
export const VM_SCRIPT = `${POLLER}
(function () {
  var status = document.getElementById('progress');
  if (!status) return;
  var assignmentId = status.getAttribute('data-assignment');
  var shown = status.getAttribute('data-progress');
  var timer = null;
  function copy(id) {
    var text = document.getElementById(id).textContent;
    if (navigator.clipboard) navigator.clipboard.writeText(text).catch(function () {});
  }
  function enhance() {
    document.querySelectorAll('[data-copy]').forEach(function (button) {
      button.hidden = false;
      button.addEventListener('click', function () { copy(button.getAttribute('data-copy')); button.textContent = 'Copied'; });
    });
    if (timer) clearInterval(timer);
    timer = null;
    var elapsed = document.getElementById('elapsed');
    if (!elapsed) return;
    var started = Date.now() - 1000 * Number(elapsed.getAttribute('data-elapsed'));
    var slowAfter = Number(elapsed.getAttribute('data-slow-after'));
    var time = document.getElementById('elapsed-time');
    var slow = document.getElementById('slow');
    timer = setInterval(function () {
      var seconds = Math.floor((Date.now() - started) / 1000);
      var minutes = Math.floor(seconds / 60);
      time.textContent = minutes > 0 ? minutes + ' min ' + (seconds % 60) + ' s' : seconds + ' s';
      if (seconds >= slowAfter) slow.hidden = false;
    }, 1000);
  }
  function pollEvery() { return 1000 * Number(status.getAttribute('data-poll-seconds')); }
  /** The page of the new state, put in place around the status line, which stays (a live region must stay in the page to be heard). */
  function showNewState() {
    return fetch(location.pathname, { headers: { accept: 'text/html' } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error('status ' + r.status)); })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, 'text/html');
        var fresh = doc.getElementById('progress');
        var main = status.parentNode;
        var next = doc.querySelector('main');
        if (!fresh || !next) return location.reload();
        Array.prototype.slice.call(main.childNodes).forEach(function (node) { if (node !== status) main.removeChild(node); });
        var before = true;
        Array.prototype.slice.call(next.childNodes).forEach(function (node) {
          if (node === fresh) { before = false; return; }
          var imported = document.importNode(node, true);
          if (before) main.insertBefore(imported, status); else main.appendChild(imported);
        });
        status.className = fresh.className;
        shown = fresh.getAttribute('data-progress');
        status.setAttribute('data-progress', shown);
        status.setAttribute('data-poll-seconds', fresh.getAttribute('data-poll-seconds') || '0');
        status.textContent = fresh.textContent;
        document.title = doc.title;
        enhance();
      });
  }
  var expiry = document.getElementById('expiry');
  if (expiry && expiry.hasAttribute('data-seconds-left')) {
    var ends = Date.now() + 1000 * Number(expiry.getAttribute('data-seconds-left'));
    var warnSeconds = Number(expiry.getAttribute('data-warn-seconds'));
    var countDown = function () {
      var left = Math.max(0, Math.ceil((ends - Date.now()) / 60000));
      var words = left >= 60 ? Math.floor(left / 60) + ' h ' + (left % 60) + ' min' : left + ' min';
      var shownLeft = document.getElementById('expiry-left');
      var warning = document.getElementById('expiry-warning');
      // A new state put in place may show no end (a VM taken back).
      if (!shownLeft || !warning) return;
      shownLeft.textContent = words;
      document.getElementById('expiry-warning-left').textContent = words;
      if (ends - Date.now() <= 1000 * warnSeconds) warning.hidden = false;
    };
    setInterval(countDown, 15000);
  }
  enhance();
  if (!pollEvery()) return;
  lablinkPoll(function (done) {
    var every = pollEvery();
    fetch('/api/assignment/' + encodeURIComponent(assignmentId), { headers: { accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        // Refused or failed (a 429 too): ask again, later than usual.
        if (!data) return done(2 * every);
        if (data.assignment !== assignmentId) return location.replace('/vm/' + data.assignment);
        if (data.progress === shown) return done(every);
        return showNewState().then(function () { done(pollEvery() || null); });
      })
      .catch(function () { done(2 * every); });
  }, pollEvery());
})();
`;
