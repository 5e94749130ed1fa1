import { Browser, BrowserContext, Page } from 'playwright-core';
import { recordPoll } from '../../../store/vms';
import { CHANGING_POLL_SECONDS, FORM_POLL_SECONDS, SETTLED_POLL_SECONDS } from '../../../contract/page-polling';
import { CHROMIUM_INSTALL_TIMEOUT_MS, launchChromium } from '../../../local/chromium';
import { useAgentHarness } from '../../support/agent-harness';
import { TEST_ADMIN_SECRET, crdCommand } from '../../support/fixtures';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;

declare global {
  interface Window {
    /** Requests the page's script made, by path, and the answers it has read. */
    asked: Record<string, number>;
    answered: number;
  }
}

/** Counts the page's fetches by path, and the JSON answers it read (after which it has planned its next ask). */
function countRequests() {
  window.asked = {};
  window.answered = 0;
  const fetch = window.fetch;
  window.fetch = (input, init) => {
    const path = new URL(String(input), location.href).pathname.replace(/[0-9a-f-]{36}$/, ':id');
    window.asked[path] = (window.asked[path] ?? 0) + 1;
    return fetch(input, init);
  };
  // A status answer is read as JSON; the page of a new state (put in place by the VM page's script) as text.
  const json = Response.prototype.json;
  Response.prototype.json = function () {
    return json.call(this).then((data: unknown) => {
      window.answered += 1;
      return data;
    });
  };
  const text = Response.prototype.text;
  Response.prototype.text = function () {
    return text.call(this).then((body: string) => {
      window.answered += 1;
      return body;
    });
  };
}

/** Headless Chromium never hides a page, so the test hides and shows it as a tab switch would: `document.hidden` and a `visibilitychange` event. */
async function setHidden(page: Page, hidden: boolean): Promise<void> {
  await page.evaluate((hide) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => hide });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hide ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

async function asked(page: Page, path: string): Promise<number> {
  return page.evaluate((p) => window.asked[p] ?? 0, path);
}

/** Advances the page's paused clock second by second, letting each ask be answered before time goes on. */
async function advance(page: Page, seconds: number): Promise<void> {
  for (let second = 0; second < seconds; second += 1) {
    await page.clock.runFor(1000);
    await page.waitForFunction(() => window.answered === Object.values(window.asked).reduce((sum, count) => sum + count, 0));
  }
}

/** Advances second by second until the page asks `path` once more; the page's schedule counts from then. */
async function advanceToNextAsk(page: Page, path: string): Promise<void> {
  const before = await asked(page, path);
  for (let second = 0; (await asked(page, path)) === before; second += 1) {
    if (second > SETTLED_POLL_SECONDS) throw new Error(`${path} was not asked within ${SETTLED_POLL_SECONDS} s`);
    await advance(page, 1);
  }
}

/** Advances the page's clock second by second until `selector` shows; the VM and the server move in real time meanwhile. */
async function advanceUntilShown(page: Page, selector: string, withinMs = 30_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while ((await page.locator(selector).count()) === 0) {
    if (Date.now() > deadline) throw new Error(`${selector} did not show within ${withinMs / 1000} s`);
    await advance(page, 1);
  }
}

describe('open pages ask little: slowly once settled, nothing while hidden, at once when shown again (real Chromium, simulated clock)', () => {
  const harness = useAgentHarness();
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    browser = await launchChromium();
  }, CHROMIUM_INSTALL_TIMEOUT_MS);
  afterAll(async () => browser?.close());
  afterEach(async () => context?.close());

  /**
   * A participant's browser whose clock stands still until the test moves it. Paused before the
   * page exists: pausing a running clock races it, and Playwright refuses a pause at a time the
   * clock has passed meanwhile (microsoft/playwright#33926).
   */
  async function participantPage(): Promise<Page> {
    context = await browser.newContext();
    await context.clock.install();
    await context.clock.pauseAt(Date.now());
    await context.addInitScript(countRequests);
    const page = await context.newPage();
    await page.goto(`${harness.env.url}/`);
    return page;
  }

  async function requestVm(page: Page, email: string): Promise<string> {
    await page.getByLabel('Your email').fill(email);
    await page.getByLabel('The Debian Linux command from step 1').fill(crdCommand());
    await page.getByRole('button', { name: 'Get my VM' }).click();
    await page.waitForURL(/\/vm\/[0-9a-f-]{36}/);
    return page.url();
  }

  const STATUS = '/api/assignment/:id';

  /** A participant's page showing Ready for a real agent's VM, its clock paused. */
  async function readyPage(hostname: string): Promise<Page> {
    await harness.startVm(hostname);
    const page = await participantPage();
    await requestVm(page, `${hostname}@example.com`);
    await advanceUntilShown(page, '#progress[data-progress="ready"]');
    // The page changed to Ready in place (no reload): count from here.
    await page.evaluate(() => {
      window.asked = {};
      window.answered = 0;
    });
    return page;
  }

  it(`a page whose VM is on its way asks every ${CHANGING_POLL_SECONDS} s; once Ready, every ${SETTLED_POLL_SECONDS} s`, async () => {
    // A VM whose agent does not answer yet: the request stays "assigned".
    await recordPoll(harness.env.db.sql, 'open-waiting', 600);
    const waiting = await participantPage();
    await requestVm(waiting, 'waiting@example.com');
    await advanceToNextAsk(waiting, STATUS);
    const first = await asked(waiting, STATUS);
    await advance(waiting, SETTLED_POLL_SECONDS);
    expect((await asked(waiting, STATUS)) - first).toBe(SETTLED_POLL_SECONDS / CHANGING_POLL_SECONDS);
    await harness.env.db.pool.query(`UPDATE vms SET alive_until = now() WHERE hostname = 'open-waiting'`);

    const ready = await readyPage('open-ready');
    await advanceToNextAsk(ready, STATUS);
    for (const count of [2, 3]) {
      await advance(ready, SETTLED_POLL_SECONDS - 1);
      expect(await asked(ready, STATUS)).toBe(count - 1);
      await advance(ready, 1);
      expect(await asked(ready, STATUS)).toBe(count);
    }
  });

  it('a hidden page asks nothing; shown again it asks at once and shows what changed meanwhile', async () => {
    const page = await readyPage('open-hidden');
    await setHidden(page, true);
    expect(
      (await fetch(`${harness.env.url}/api/vms/open-hidden/release`, { method: 'POST', headers: { authorization: ADMIN } })).status,
    ).toBe(200);
    await advance(page, 10 * SETTLED_POLL_SECONDS);
    expect(await asked(page, STATUS)).toBe(0);
    await expect(page.locator('#progress').getAttribute('data-progress')).resolves.toBe('ready');

    // No time passes on the page's clock: the catch-up is at once.
    await setHidden(page, false);
    await page.waitForSelector('#progress[data-progress="released"]');
  });

  it('without JavaScript a Ready page reloads itself every minute, not every 10 s', async () => {
    await harness.startVm('open-nojs');
    context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${harness.env.url}/`);
    await requestVm(page, 'nojs@example.com');
    // While setting up it reloads every 10 s (test/e2e/browser/vm-states.test.ts), so it gets to Ready.
    await page.waitForSelector('#progress[data-progress="ready"]');
    await expect(page.locator('noscript').first().innerHTML()).resolves.toBe('<meta http-equiv="refresh" content="60">');
  });

  it('a hidden form does not ask for the free count; shown again it asks at once, then on its usual schedule', async () => {
    const form = await participantPage();
    const COUNT = '/api/unassigned_vms_count';
    await advanceToNextAsk(form, COUNT);
    expect(await asked(form, COUNT)).toBe(1);
    await setHidden(form, true);
    await advance(form, 12 * FORM_POLL_SECONDS);
    expect(await asked(form, COUNT)).toBe(1);
    await setHidden(form, false);
    await form.waitForFunction(() => window.asked['/api/unassigned_vms_count'] === 2);
    await form.waitForFunction(() => window.answered === 2);
    await advance(form, FORM_POLL_SECONDS - 1);
    expect(await asked(form, COUNT)).toBe(2);
    await advance(form, 1);
    expect(await asked(form, COUNT)).toBe(3);
  });
});
