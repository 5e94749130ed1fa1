import { CHANGING_POLL_SECONDS } from '../../contract/page-polling';

/**
 * The pages' shared way of asking the server for news, as a function in their scripts:
 * `lablinkPoll(ask, firstMs)` calls `ask(done)` after `firstMs`, and again after the
 * milliseconds `ask` passes to `done` (null: never again). A hidden page asks nothing; shown
 * again it asks at once, unless it asked within the last few seconds, so it catches up without
 * a tab switch costing a request each.
 */
export const POLLER = `function lablinkPoll(ask, firstMs) {
  var timer = null, busy = false, missed = false, stopped = false, last = Date.now();
  function run() {
    timer = null;
    if (document.hidden) { missed = true; return; }
    busy = true;
    last = Date.now();
    ask(function (nextMs) {
      busy = false;
      if (nextMs === null) stopped = true;
      else timer = setTimeout(run, nextMs);
    });
  }
  document.addEventListener('visibilitychange', function () {
    if (document.hidden || stopped || busy) return;
    if (missed || Date.now() - last >= ${CHANGING_POLL_SECONDS * 1000}) {
      clearTimeout(timer);
      missed = false;
      run();
    }
  });
  timer = setTimeout(run, firstMs);
}`;
