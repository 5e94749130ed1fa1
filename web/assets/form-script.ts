import { FORM_POLL_SECONDS } from '../../contract/page-polling';
import { POLLER } from './poller';

// Keeps the form's free count current without a reload (while the form is shown) and offers the
// suggested email in one click; the page works without it.
export const FORM_SCRIPT = `${POLLER}
(function () {
  document.querySelectorAll('[data-use-email]').forEach(function (button) {
    var email = document.getElementById('email');
    button.hidden = false;
    button.addEventListener('click', function () {
      email.value = button.getAttribute('data-use-email');
      email.focus();
    });
  });
  var el = document.getElementById('free-count');
  if (!el) return;
  var every = ${FORM_POLL_SECONDS * 1000};
  lablinkPoll(function (done) {
    fetch('/api/unassigned_vms_count', { headers: { accept: 'application/json' } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        // The live region speaks only when the words change.
        if (el.textContent !== data.message) el.textContent = data.message;
        el.className = data.count === 0 ? 'notice' : 'ok';
      })
      .catch(function () {})
      .then(function () { done(every); });
  }, every);
})();
`;
