import { Browser, Page } from 'playwright-core';
import { SimulatedFleet, startSimulatedFleet } from '../../../local/simulated-fleet';
import { CHROMIUM_INSTALL_TIMEOUT_MS, launchChromium } from '../../../local/chromium';
import { accessibilityViolations } from '../../support/axe';
import { TEST_FLEET_TOKEN, crdCommand, fakeCode, waitFor } from '../../support/fixtures';
import { TestStack, freeCount, startTestStack } from '../../support/stack';

describe('participant flow in a real Chromium against local mode', () => {
  let env: TestStack;
  let fleet: SimulatedFleet;
  let browser: Browser;

  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 2, aliveGraceSeconds: 5 });
    fleet = await startSimulatedFleet({ count: 3, allocatorUrl: env.url, fleetToken: TEST_FLEET_TOKEN, namePrefix: 'web-vm' });
    await waitFor(async () => (await freeCount(env.url)) === 3, 'three agents to register');
    browser = await launchChromium();
  }, CHROMIUM_INSTALL_TIMEOUT_MS);
  afterAll(async () => {
    await browser?.close();
    await fleet?.stop();
    await env?.close();
  });

  async function openForm(options: { javaScriptEnabled?: boolean; viewport?: { width: number; height: number } } = {}): Promise<Page> {
    const context = await browser.newContext(options);
    const page = await context.newPage();
    await page.goto(`${env.url}/`);
    return page;
  }

  it('completes the flow: form, VM and PIN, then "Ready" once the agent has configured CRD', async () => {
    const page = await openForm();
    await expect(page.locator('#free-count').textContent()).resolves.toBe('3 VMs are free right now.');
    await expect(page.getByRole('link', { name: 'remotedesktop.google.com/headless' }).getAttribute('target')).resolves.toBe('_blank');

    expect(await accessibilityViolations(page)).toEqual([]);

    await page.getByLabel('Your email').fill('ada@example.com');
    await page.getByLabel('The Debian Linux command from step 1').fill(crdCommand());
    await page.getByRole('button', { name: 'Get my VM' }).click();

    await page.waitForURL(/\/vm\/[0-9a-f-]{36}$/);
    const hostname = await page.locator('#hostname').textContent();
    const pin = await page.locator('#pin').textContent();
    expect(hostname).toMatch(/^web-vm-\d$/);
    expect(pin).toMatch(/^\d{6}$/);
    await page.waitForSelector('#progress[data-progress="ready"]');
    await expect(page.locator('#progress').textContent()).resolves.toContain(
      `Ready. Open remotedesktop.google.com/access, click ${hostname}`,
    );
    expect(await accessibilityViolations(page)).toEqual([]);

    // The same browser: only it is shown the VM again for this email.
    const again = await page.context().newPage();
    await again.goto(`${env.url}/`);
    await again.getByLabel('Your email').fill('ADA@example.com');
    await again.getByLabel('The Debian Linux command from step 1').fill(crdCommand());
    await again.getByRole('button', { name: 'Get my VM' }).click();
    await again.waitForURL(/\/vm\//);
    await expect(again.locator('#hostname').textContent()).resolves.toBe(hostname);
    await expect(again.locator('#pin').textContent()).resolves.toBe(pin);
    await expect(again.getByText('You already had this VM; here it is again.').isVisible()).resolves.toBe(true);
  });

  it.each([
    ['with JavaScript', true],
    ['without JavaScript', false],
  ])(
    'shows every mistake at once %s: a focused summary at the top, in view on a phone, the title says so',
    async (_case, javaScriptEnabled) => {
      const page = await openForm({ javaScriptEnabled, viewport: { width: 360, height: 740 } });
      const code = fakeCode();
      await page.getByLabel('Your email').fill('grace@gmial.com');
      await page.getByLabel('The Debian Linux command from step 1').fill(code);
      await page.getByRole('button', { name: 'Get my VM' }).click();
      await page.waitForSelector('#error-summary');
      await expect(page.title()).resolves.toBe('Error: Get your workshop VM · LabLink');
      await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('error-summary');
      const summary = page.locator('#error-summary');
      await expect(summary.getByRole('heading').textContent()).resolves.toBe('There are 2 problems');
      await expect(summary.getByRole('link').allTextContents()).resolves.toEqual([
        expect.stringContaining('Did you mean grace@gmail.com?'),
        expect.stringContaining('This looks like the code alone, not the whole command.'),
      ]);
      const firstError = await summary.getByRole('link').first().boundingBox();
      expect(firstError && firstError.y >= 0 && firstError.y + firstError.height <= 740).toBe(true);
      await expect(page.locator('#crd_command-error').textContent()).resolves.toContain('code alone');
      await expect(page.getByLabel('Your email').inputValue()).resolves.toBe('grace@gmial.com');
      await expect(page.locator('#crd_command').getAttribute('aria-invalid')).resolves.toBe('true');
      // axe waits on timers, which do not run in a page without JavaScript; the markup is the same either way.
      if (javaScriptEnabled) expect(await accessibilityViolations(page)).toEqual([]);

      await summary.getByRole('link').nth(1).click();
      await expect(page.evaluate(() => document.activeElement?.id)).resolves.toBe('crd_command');

      // Post/Redirect/Get: the page with the mistakes has an address of its own, without the code;
      // a reload shows it again, with what was typed, and posts nothing.
      expect(page.url()).toBe(`${env.url}/?error=invalid&email=grace%40gmial.com#crd_command`);
      const posts: string[] = [];
      page.on('request', (request) => {
        if (request.method() !== 'GET') posts.push(`${request.method()} ${request.url()}`);
      });
      const reloaded = await page.reload();
      expect(reloaded?.request().method()).toBe('GET');
      await expect(page.locator('#crd_command').inputValue()).resolves.toBe(code);
      await expect(page.getByLabel('Your email').inputValue()).resolves.toBe('grace@gmial.com');
      await expect(page.locator('#error-summary li').count()).resolves.toBe(2);
      expect(posts).toEqual([]);

      // Taking the suggestion needs the script; without it the button would do nothing, so it is not shown.
      const useSuggestion = page.getByRole('button', { name: 'Use grace@gmail.com' });
      await expect(useSuggestion.isVisible()).resolves.toBe(javaScriptEnabled);
      if (javaScriptEnabled) {
        await useSuggestion.click();
        await expect(page.getByLabel('Your email').inputValue()).resolves.toBe('grace@gmail.com');
      }
    },
  );

  it('keeps an address the participant confirms, and takes a command pasted with a prompt and typographic quotes', async () => {
    const page = await openForm();
    await page.getByLabel('Your email').fill('grace@gmial.com');
    await page.getByLabel('The Debian Linux command from step 1').fill(`$ ${crdCommand().replace(/"([^"]*)"/g, '\u201c$1\u201d')}`);
    await page.getByRole('button', { name: 'Get my VM' }).click();
    await page.waitForSelector('#error-summary');
    await expect(page.locator('#error-summary li').count()).resolves.toBe(1);
    await page.getByLabel('Yes, grace@gmial.com is my address').check();
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Get my VM' }).click();
    await page.waitForURL(/\/vm\//);
    await expect(page.locator('#pin').textContent()).resolves.toMatch(/^\d{6}$/);
    const { rows } = await env.db.pool.query(`SELECT email FROM vms WHERE email LIKE 'grace@%'`);
    expect(rows).toEqual([{ email: 'grace@gmial.com' }]);
  });

  it('works with the keyboard alone, in a sensible focus order', async () => {
    const page = await openForm();
    const order: string[] = [];
    for (let step = 0; step < 8; step += 1) {
      await page.keyboard.press('Tab');
      order.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim() || ''));
    }
    const fields = ['email', 'crd_command', 'Get my VM'].map((name) => order.indexOf(name));
    expect(fields.every((index) => index >= 0)).toBe(true);
    expect(fields).toEqual([...fields].sort((a, b) => a - b));
    expect(order.indexOf('remotedesktop.google.com/headless')).toBeLessThan(fields[0]);

    await page.focus('#email');
    await page.keyboard.type('kbd@example.com');
    await page.keyboard.press('Tab');
    await page.keyboard.type(crdCommand());
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/vm\//);
    await expect(page.locator('#pin').textContent()).resolves.toMatch(/^\d{6}$/);
  });

  it('gives VM and PIN without JavaScript, on a phone-sized screen without sideways scrolling', async () => {
    await env.db.pool.query(
      `UPDATE vms SET email = NULL, state = 'waiting', pin = NULL, crd_command = NULL, assignment_id = NULL WHERE email IN ('kbd@example.com', 'grace@gmial.com')`,
    );
    const page = await openForm({ javaScriptEnabled: false, viewport: { width: 360, height: 740 } });
    await page.getByLabel('Your email').fill('nojs@example.com');
    await page.getByLabel('The Debian Linux command from step 1').fill(crdCommand());
    await page.getByRole('button', { name: 'Get my VM' }).click();
    await page.waitForURL(/\/vm\//);
    await expect(page.locator('#pin').textContent()).resolves.toMatch(/^\d{6}$/);
    await expect(page.getByRole('link', { name: 'Check again' }).isVisible()).resolves.toBe(true);
    // Copying needs the script: without it the buttons would do nothing, so they are not shown.
    await expect(page.locator('button[data-copy]').count()).resolves.toBe(2);
    await expect(
      page.locator('button[data-copy]').evaluateAll((buttons) => buttons.filter((b) => (b as HTMLElement).offsetParent !== null).length),
    ).resolves.toBe(0);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
  });

  it('says plainly when no VM is free', async () => {
    await Promise.all(fleet.vms.map((vm) => vm.stop()));
    // Silent for an hour: not booting, so nothing is on its way either.
    await env.db.pool.query(`UPDATE vms SET alive_until = now(), registered_at = now() - interval '1 hour' WHERE state = 'waiting'`);
    const page = await openForm();
    await expect(page.locator('#free-count').textContent()).resolves.toContain('No VM is free right now.');
  });
});
