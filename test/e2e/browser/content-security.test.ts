import { Browser, BrowserContext } from 'playwright-core';
import { requestVm } from '../../../store/assignment';
import { recordPoll } from '../../../store/vms';
import { CHROMIUM_INSTALL_TIMEOUT_MS, launchChromium } from '../../../local/chromium';
import { TEST_ADMIN_SECRET, crdCommand } from '../../support/fixtures';
import { watchCspViolations } from '../../support/csp';
import { TestStack, startTestStack } from '../../support/stack';

describe('pages under their Content-Security-Policy in a real Chromium', () => {
  let env: TestStack;
  let browser: Browser;

  beforeAll(async () => {
    env = await startTestStack();
    for (const name of ['csp-vm-1', 'csp-vm-2']) await recordPoll(env.db.sql, name, 600);
    browser = await launchChromium();
  }, CHROMIUM_INSTALL_TIMEOUT_MS);
  afterAll(async () => {
    await browser?.close();
    await env?.close();
  });

  async function watchedContext(admin = false): Promise<{ context: BrowserContext; violations: string[] }> {
    const context = await browser.newContext(admin ? { httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET } } : {});
    return { context, violations: await watchCspViolations(context) };
  }

  it('reports a violation when a page runs an inline script, so the checks below can fail', async () => {
    const { context, violations } = await watchedContext();
    const page = await context.newPage();
    await page.goto(`${env.url}/`);
    await page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = 'document.title = "injected"';
      document.body.append(script);
    });
    await expect(page.title()).resolves.toBe('Get your workshop VM · LabLink');
    expect(violations).toEqual(['script-src-elem inline']);
  });

  it('runs every page’s own script and style with no violation: form, VM page, dashboard, confirmation, log', async () => {
    const assigned = await requestVm(env.db.sql, { email: 'csp@example.com', crdCommand: crdCommand() });
    if (assigned.kind !== 'assigned') throw new Error('expected an assignment');

    const { context, violations } = await watchedContext(true);
    const page = await context.newPage();
    const countRefreshed = page.waitForResponse((response) => response.url().endsWith('/api/unassigned_vms_count'));
    await page.goto(`${env.url}/`);
    await countRefreshed;
    // The stylesheet applied: the status line has its colour from the stylesheet, not the browser's default.
    await expect(page.locator('#free-count').evaluate((el) => getComputedStyle(el).borderLeftStyle)).resolves.toBe('solid');

    await page.goto(`${env.url}/vm/${assigned.assignmentId}`);
    await page.getByRole('button', { name: 'Copy PIN' }).waitFor({ state: 'visible' });
    await page.waitForResponse((response) => response.url().endsWith(`/api/assignment/${assigned.assignmentId}`));

    await page.goto(`${env.url}/admin`);
    await page.getByLabel('Filter').fill('csp@');
    await expect(page.locator('#vm-rows tr:not([hidden])').count()).resolves.toBe(1);
    await page.goto(`${env.url}/admin/vms/${assigned.hostname}/release`);
    await page.goto(`${env.url}/admin/vms/${assigned.hostname}/logs`);
    expect(violations).toEqual([]);
  });
});
