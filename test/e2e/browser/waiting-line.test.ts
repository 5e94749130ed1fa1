import { Browser, BrowserContext, Page } from 'playwright-core';
import { CHROMIUM_INSTALL_TIMEOUT_MS, launchChromium } from '../../../local/chromium';
import { SimulatedFleet, startSimulatedFleet } from '../../../local/simulated-fleet';
import { accessibilityViolations } from '../../support/axe';
import { TEST_ADMIN_SECRET, TEST_FLEET_TOKEN, crdCommand, waitFor } from '../../support/fixtures';
import { TestStack, freeCount, startTestStack } from '../../support/stack';

const PHONE = { width: 375, height: 667 };

/** The waiting line in a real Chromium against local mode with one VM (a real agent that resets itself) and real PostgreSQL. */
describe('the waiting line, when every VM is taken', () => {
  let env: TestStack;
  let fleet: SimulatedFleet;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 2, aliveGraceSeconds: 5 });
    fleet = await startSimulatedFleet({ count: 1, allocatorUrl: env.url, fleetToken: TEST_FLEET_TOKEN, namePrefix: 'line-vm' });
    await waitFor(async () => (await freeCount(env.url)) === 1, 'the agent to register');
    browser = await launchChromium();
  }, CHROMIUM_INSTALL_TIMEOUT_MS);
  afterAll(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await fleet?.stop();
    await env?.close();
  });

  async function submitIn(
    options: { javaScriptEnabled?: boolean; viewport?: { width: number; height: number } },
    email: string,
  ): Promise<Page> {
    const context = await browser.newContext(options);
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${env.url}/`);
    await page.getByLabel('Your email').fill(email);
    await page.getByLabel('The Debian Linux command from step 1').fill(crdCommand());
    await page.getByRole('button', { name: 'Get my VM' }).click();
    return page;
  }

  const fitsThePhone = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

  it('shows each place and an estimate; a freed VM calls the first for a fresh command (without JavaScript, on a phone), then gives it to them; the second moves up', async () => {
    const holder = await submitIn({}, 'holder@example.com');
    await holder.waitForURL(/\/vm\/[0-9a-f-]{36}$/);
    await holder.waitForSelector('#progress[data-progress="ready"]');

    const dashboardContext = await browser.newContext({ httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET } });
    contexts.push(dashboardContext);
    const dashboardPage = await dashboardContext.newPage();
    await dashboardPage.goto(`${env.url}/admin`);
    await expect(dashboardPage.locator('#waiting-line').textContent()).resolves.toBe('Waiting line: nobody waits for a VM.');

    const first = await submitIn({ javaScriptEnabled: false, viewport: PHONE }, 'first@example.com');
    await first.waitForURL(/\/line\/[0-9a-f-]{36}$/);
    await expect(first.locator('#position').textContent()).resolves.toBe('You are number 1 of 1 waiting.');
    await expect(first.locator('#estimate').textContent()).resolves.toMatch(/^No VM is on its way for your place yet/);
    // Without JavaScript the page reloads itself.
    await expect(first.locator('meta[http-equiv="refresh"]').getAttribute('content')).resolves.toBe('15');
    expect(await fitsThePhone(first)).toBe(true);

    const second = await submitIn({}, 'second@example.com');
    await second.waitForURL(/\/line\//);
    await expect(second.locator('#position').textContent()).resolves.toBe('You are number 2 of 2 waiting.');
    expect(await accessibilityViolations(second)).toEqual([]);
    const dashboard = await fetch(`${env.url}/admin`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}` },
    });
    expect(await dashboard.text()).toContain('Waiting line: 2 participants waiting for a VM.');
    // The open dashboard counts them too, without a reload.
    await dashboardPage.waitForFunction(
      () => document.getElementById('waiting-line')?.textContent === 'Waiting line: 2 participants waiting for a VM.',
    );

    // Minutes pass: the first's command may have expired by the time a VM frees.
    await env.db.pool.query(`UPDATE waiting_line SET command_at = now() - interval '3 minutes' WHERE email = 'first@example.com'`);
    await holder.getByRole('link', { name: "I'm done with line-vm-1" }).click();
    await holder.getByRole('button', { name: "Yes, I'm done: give it back" }).click();
    await holder.waitForURL(/\?outcome=done$/);

    // While the agent wipes the VM, the estimate comes from that reset.
    await first.reload();
    await expect(first.locator('#estimate').textContent()).resolves.toMatch(
      /^Expected (in about [12] minutes?|any moment now): a VM being wiped after its last participant\.$/,
    );

    // Without JavaScript the page reloads itself every 15 seconds; the test reloads it sooner.
    await waitFor(async () => {
      await first.reload();
      return (await first.locator('h1').textContent()) !== 'You are in line for a VM';
    }, 'the reset to end');
    await expect(first.locator('h1').textContent()).resolves.toBe('Your turn: a VM is free for you');
    await expect(first.locator('#turn').textContent()).resolves.toBe(
      'The command you sent may have expired. Send a new one within 5 minutes, or the VM goes to the next in line.',
    );
    expect(await fitsThePhone(first)).toBe(true);
    // axe needs JavaScript: the same page, read in a browser with it.
    const reader = await browser.newContext();
    contexts.push(reader);
    const turnPage = await reader.newPage();
    await turnPage.goto(first.url());
    expect(await accessibilityViolations(turnPage)).toEqual([]);

    // The VM waits for the first, not the second.
    await second.reload();
    await expect(second.locator('#position').textContent()).resolves.toBe('You are number 2 of 2 waiting.');

    // A command that is not one is refused, and the turn stays.
    await first.getByLabel('A new Debian Linux command from Google').fill('not a command');
    await first.getByRole('button', { name: 'Send the new command' }).click();
    await expect(first.locator('#crd_command-error').isVisible()).resolves.toBe(true);
    await expect(first.locator('h1').textContent()).resolves.toBe('Your turn: a VM is free for you');

    await first.getByLabel('A new Debian Linux command from Google').fill(crdCommand());
    await first.getByRole('button', { name: 'Send the new command' }).click();
    await first.waitForURL(/\/vm\/[0-9a-f-]{36}$/);
    await expect(first.locator('#hostname').textContent()).resolves.toBe('line-vm-1');
    await expect(first.locator('#pin').textContent()).resolves.toMatch(/^\d{6}$/);
    expect(await fitsThePhone(first)).toBe(true);
    // Its VM page offers "I'm done": the browser that waited holds the VM.
    await expect(first.getByRole('link', { name: "I'm done with line-vm-1" }).isVisible()).resolves.toBe(true);

    // With JavaScript the page updates in place, without a reload.
    await second.evaluate(() => document.body.setAttribute('data-not-reloaded', ''));
    await waitFor(
      async () => (await second.locator('#position').textContent()) === 'You are number 1 of 1 waiting.',
      'the second page to move up',
    );
    await expect(second.locator('body').getAttribute('data-not-reloaded')).resolves.toBe('');
  });
});
