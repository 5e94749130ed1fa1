import { LINE_REFRESH_SECONDS } from '../../contract/page-polling';
import { POLLER } from './poller';

// Keeps a place in line true while its page is open, without reloading it (a timed reload is hard
// on screen-reader users): it fetches the page the server renders now; while still waiting it puts
// the new position, estimate and VMs on their way in place (the position is a polite live region),
// and when anything else came (the turn, the VM) it opens that page. Without it, a <noscript> refresh.
export const LINE_SCRIPT = `${POLLER}
(function () {
  var PARTS = ['position', 'estimate', 'on-the-way'];
  lablinkPoll(function ask(done) {
    fetch(location.href, { credentials: 'same-origin' }).then(function (response) {
      return response.text().then(function (text) {
        var next = new DOMParser().parseFromString(text, 'text/html');
        if (response.redirected || !next.getElementById('position')) { location.assign(response.url); return done(null); }
        PARTS.forEach(function (id) { document.getElementById(id).innerHTML = next.getElementById(id).innerHTML; });
        document.title = next.title;
        done(${LINE_REFRESH_SECONDS * 1000});
      });
    }).catch(function () { done(${LINE_REFRESH_SECONDS * 1000}); });
  }, ${LINE_REFRESH_SECONDS * 1000});
})();`;
