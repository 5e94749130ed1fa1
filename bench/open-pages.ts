import { Hono } from 'hono';
import { Progress } from '../contract/page-polling';
import { Rate, rateLimit } from '../http/rate-limit';
import { ADMIN_POLL_SECONDS, CHANGING_POLL_SECONDS, FORM_POLL_SECONDS, vmPagePollSeconds } from '../contract/page-polling';
import { ApiThrottle, Throttle } from '../lib/api-throttle';

/**
 * A workshop's open pages, on a simulated clock, through the local limiter set to the API
 * Gateway stage's numbers. Each participant:
 * - opens the form within the first minute (the page, its stylesheet and script), which asks for
 *   the free count while it is shown, then leaves it hidden for Google's page (5–20 s later);
 * - comes back in the 10 s before SUBMIT_AT_SECONDS and submits within that one second, like
 *   everyone else: the POST, the VM page it redirects to, that page's script;
 * - watches the page while the VM sets up (20–60 s), then sees Ready (a reload);
 *   `failedShare` of them see Failed instead and, 10–30 s later, ask for a new command (the form
 *   again, hidden for 30–90 s at Google's) and submit once more;
 * - switches to Chrome Remote Desktop 5–30 s after Ready and looks at the page again every
 *   2–10 minutes, for 5–30 s.
 * Two instructors keep the dashboard shown throughout. Pages follow the scripts' rules (the
 * intervals of contract/page-polling.ts, nothing while hidden, catching up when shown, twice the
 * interval after a refusal). Requests are answered at once, so a burst lands in one instant.
 */
export interface OpenPagesScenario {
  participants: number;
  throttle: ApiThrottle;
  /** Simulated seconds. */
  seconds: number;
  failedShare: number;
  seed: number;
}

const SUBMIT_AT_SECONDS = 90;
const INSTRUCTORS = 2;

type Kind = 'page' | 'poll' | 'submit' | 'admin';

/** A small seeded generator (mulberry32), so runs can be compared. */
export function randomSource(seed: number): (low: number, high: number) => number {
  let state = seed >>> 0;
  return (low, high) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return low + (((t ^ (t >>> 14)) >>> 0) / 4294967296) * (high - low);
  };
}

interface Timer {
  at: number;
  seq: number;
  cancelled: boolean;
  run: () => Promise<void> | void;
}

/** Timers on simulated milliseconds, run in order of time (a binary heap). */
class Agenda {
  now = 0;
  private heap: Timer[] = [];
  private seq = 0;

  after(ms: number, run: Timer['run']): Timer {
    const timer = { at: this.now + ms, seq: (this.seq += 1), cancelled: false, run };
    this.heap.push(timer);
    for (let i = this.heap.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!this.before(this.heap[i], this.heap[parent])) break;
      [this.heap[i], this.heap[parent]] = [this.heap[parent], this.heap[i]];
      i = parent;
    }
    return timer;
  }

  async runUntil(endMs: number): Promise<void> {
    while (this.heap.length > 0 && this.heap[0].at <= endMs) {
      const timer = this.pop();
      this.now = timer.at;
      if (!timer.cancelled) await timer.run();
    }
    this.now = endMs;
  }

  private before(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private pop(): Timer {
    const top = this.heap[0];
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      for (let i = 0; ;) {
        const [left, right] = [2 * i + 1, 2 * i + 2];
        let least = i;
        if (left < this.heap.length && this.before(this.heap[left], this.heap[least])) least = left;
        if (right < this.heap.length && this.before(this.heap[right], this.heap[least])) least = right;
        if (least === i) break;
        [this.heap[i], this.heap[least]] = [this.heap[least], this.heap[i]];
        i = least;
      }
    }
    return top;
  }
}

/** web/assets/poller.ts on the simulated clock: `ask` answers the milliseconds until the next ask, or null for never. */
class SimulatedPoller {
  private timer?: Timer;
  private hidden = false;
  private missed = false;
  private closed = false;
  private last: number;

  constructor(
    private readonly agenda: Agenda,
    private readonly ask: () => Promise<number | null>,
    firstMs: number,
  ) {
    this.last = agenda.now;
    this.timer = agenda.after(firstMs, () => this.run());
  }

  hide(): void {
    this.hidden = true;
  }

  async show(): Promise<void> {
    this.hidden = false;
    if (this.closed) return;
    if (this.missed || this.agenda.now - this.last >= CHANGING_POLL_SECONDS * 1000) {
      this.cancel();
      this.missed = false;
      await this.run();
    }
  }

  close(): void {
    this.closed = true;
    this.cancel();
  }

  private cancel(): void {
    if (this.timer) this.timer.cancelled = true;
  }

  private async run(): Promise<void> {
    if (this.hidden) {
      this.missed = true;
      return;
    }
    this.last = this.agenda.now;
    const next = await this.ask();
    if (next === null) this.closed = true;
    else if (!this.closed) this.timer = this.agenda.after(next, () => this.run());
  }
}

const asRate = (throttle: Throttle): Rate => ({ perSecond: throttle.rate, burst: throttle.burst });

/**
 * The stage as a Hono app: every request passes the stage's bucket and a request for a VM also
 * the route's (stricter than API Gateway, where the route's own limit replaces the stage's).
 */
function stageApp(throttle: ApiThrottle, clock: () => number): Hono {
  const app = new Hono();
  app.use('*', rateLimit({ global: asRate(throttle.stage), clientKey: () => 'stage', clock }));
  app.post('/api/request_vm', rateLimit({ global: asRate(throttle.requestVm), clientKey: () => 'route', clock }), (c) => c.body(null, 204));
  app.all('*', (c) => c.body(null, 204));
  return app;
}

export async function simulateOpenPages(scenario: OpenPagesScenario) {
  const agenda = new Agenda();
  const random = randomSource(scenario.seed);
  const app = stageApp(scenario.throttle, () => agenda.now);
  const perSecond = new Array<number>(scenario.seconds + 1).fill(0);
  const sent: Record<Kind, number> = { page: 0, poll: 0, submit: 0, admin: 0 };
  const refused: Record<Kind, number> = { page: 0, poll: 0, submit: 0, admin: 0 };
  const seconds = (low: number, high: number) => random(low, high) * 1000;

  async function send(kind: Kind, method: string, path: string): Promise<boolean> {
    perSecond[Math.floor(agenda.now / 1000)] += 1;
    sent[kind] += 1;
    const { status } = await app.request(path, { method });
    if (status === 429) refused[kind] += 1;
    return status !== 429;
  }

  function participant(index: number): void {
    const id = `p${index}`;
    let scriptsLoaded = false;
    let attempts = 0;

    async function openForm(first: boolean, hiddenForMs: number): Promise<void> {
      await send('page', 'GET', first ? '/' : `/?email=${id}`);
      // Cached for good after the first load (immutable, hashed names).
      if (first) for (const asset of ['/assets/style.css', '/assets/form.js']) await send('page', 'GET', asset);
      const form = new SimulatedPoller(
        agenda,
        async () => (await send('poll', 'GET', '/api/unassigned_vms_count'), FORM_POLL_SECONDS * 1000),
        FORM_POLL_SECONDS * 1000,
      );
      const submitAt = first ? SUBMIT_AT_SECONDS * 1000 + seconds(0, 1) : agenda.now + hiddenForMs + seconds(2, 5);
      agenda.after(first ? seconds(5, 20) : seconds(1, 3), () => form.hide());
      agenda.after(submitAt - agenda.now - (first ? seconds(0, 10) : seconds(2, 5)), () => form.show());
      agenda.after(submitAt - agenda.now, async () => {
        form.close();
        await submit();
      });
    }

    async function submit(): Promise<void> {
      attempts += 1;
      if (!(await send('submit', 'POST', '/api/request_vm'))) {
        // Refused: the participant reads the error and submits again a little later.
        agenda.after(seconds(5, 15), submit);
        return;
      }
      const ends: Progress = attempts === 1 && random(0, 1) < scenario.failedShare ? 'failed' : 'ready';
      const settlesAt = agenda.now + seconds(20, 60);
      await openVmPage(settlesAt, ends);
    }

    async function openVmPage(settlesAt: number, ends: Progress): Promise<void> {
      const shownProgress = (): Progress => (agenda.now >= settlesAt ? ends : 'configuring');
      const load = async () => {
        await send('page', 'GET', `/vm/${id}`);
        if (!scriptsLoaded) await send('page', 'GET', '/assets/vm.js');
        scriptsLoaded = true;
        const shown = shownProgress();
        const every = vmPagePollSeconds(shown)! * 1000;
        const page = new SimulatedPoller(
          agenda,
          async () => {
            if (!(await send('poll', 'GET', `/api/assignment/${id}`))) return 2 * every;
            if (shownProgress() === shown) return every;
            page.close();
            await load();
            return null;
          },
          every,
        );
        if (shown === 'ready') watchCrd(page);
        if (shown === 'failed') {
          agenda.after(seconds(10, 30), async () => {
            page.close();
            await openForm(false, seconds(30, 90));
          });
        }
      };
      await load();
    }

    function watchCrd(page: SimulatedPoller): void {
      agenda.after(seconds(5, 30), () => {
        page.hide();
        agenda.after(seconds(120, 600), async () => {
          await page.show();
          watchCrd(page);
        });
      });
    }

    agenda.after(seconds(0, 60), () => openForm(true, 0));
  }

  for (let index = 0; index < scenario.participants; index += 1) participant(index);
  for (let index = 0; index < INSTRUCTORS; index += 1) {
    agenda.after(seconds(0, 10), async () => {
      await send('admin', 'GET', '/admin');
      await send('admin', 'GET', '/assets/admin.js');
      new SimulatedPoller(
        agenda,
        async () => (await send('admin', 'GET', '/admin/rows'), ADMIN_POLL_SECONDS * 1000),
        ADMIN_POLL_SECONDS * 1000,
      );
    });
  }
  await agenda.runUntil(scenario.seconds * 1000);

  const total = Object.values(sent).reduce((sum, count) => sum + count, 0);
  const settledFrom = SUBMIT_AT_SECONDS + 120;
  const settled = perSecond.slice(settledFrom, scenario.seconds);
  return {
    scenario: 'openpages',
    participants: scenario.participants,
    simulatedSeconds: scenario.seconds,
    limits: scenario.throttle,
    requests: total,
    requestsByKind: sent,
    requestsPerSecond: {
      mean: Math.round((total / scenario.seconds) * 10) / 10,
      peak: Math.max(...perSecond),
      settledMean: settled.length ? Math.round((settled.reduce((sum, count) => sum + count, 0) / settled.length) * 10) / 10 : null,
    },
    refused: Object.values(refused).reduce((sum, count) => sum + count, 0),
    refusedByKind: refused,
  };
}
