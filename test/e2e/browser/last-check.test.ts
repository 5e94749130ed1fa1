import { Browser } from 'playwright-core';
import { CHROMIUM_INSTALL_TIMEOUT_MS, launchChromium } from '../../../local/chromium';
import { accessibilityViolations } from '../../support/axe';
import { TEST_ADMIN_SECRET } from '../../support/fixtures';
import { TestStack, startTestStack } from '../../support/stack';

describe("the dashboard's last go / no-go check, in a real Chromium", () => {
  let env: TestStack;
  let browser: Browser;

  beforeAll(async () => {
    env = await startTestStack();
    browser = await launchChromium();
  }, CHROMIUM_INSTALL_TIMEOUT_MS);
  afterAll(async () => {
    await browser?.close();
    await env?.close();
  });

  it('shows the verdict, its time and each failure as text (never markup), with no accessibility violations', async () => {
    const lines = [
      { status: 'PASS', name: 'form', message: 'the form answers' },
      {
        status: 'FAIL',
        name: 'vm lablink-vm-2',
        message: 'Setup failed at setup-check: <img src=x onerror=alert(1)>',
        action: 'Re-run setup.',
      },
    ];
    const posted = await fetch(`${env.url}/api/go-no-go`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ lines }),
    });
    expect(posted.status).toBe(201);

    const context = await browser.newContext({ httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET } });
    const page = await context.newPage();
    await page.goto(`${env.url}/admin`);
    const block = page.locator('#last-check');
    await expect(block.locator('p').textContent()).resolves.toMatch(
      /^Last check: NO-GO \(1 problem\), just now \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)\.$/,
    );
    await expect(block.locator('li').allTextContents()).resolves.toEqual([
      'vm lablink-vm-2: Setup failed at setup-check: <img src=x onerror=alert(1)> — Re-run setup.',
    ]);
    await expect(block.locator('img').count()).resolves.toBe(0);
    expect(await accessibilityViolations(page)).toEqual([]);
    await context.close();
  });
});
