import { useStackAndBrowser } from '../../support/suite';
import { BrowserContext } from 'playwright-core';
import { requestVm } from '../../../store/assignment';
import { recordPoll } from '../../../store/vms';
import { watchCspViolations } from '../../support/csp';
import { TEST_ADMIN_SECRET, crdCommand } from '../../support/fixtures';

describe('pages under their Content-Security-Policy in a real Chromium', () => {
  const suite = useStackAndBrowser(undefined, async (env) => {
    for (const name of ['csp-vm-1', 'csp-vm-2']) await recordPoll(env.db.sql, name, 600);
  });

  async function watchedContext(admin = false): Promise<{ context: BrowserContext; violations: string[] }> {
    const context = await suite.browser.newContext(admin ? { httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET } } : {});
    return { context, violations: await watchCspViolations(context) };
  }

  it('reports a violation when a page runs an inline script, so the checks below can fail', async () => {
    const { context, violations } = await watchedContext();
    const page = await context.newPage();
    await page.goto(`${suite.env.url}/`);
    await page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = 'document.title = "injected"';
      document.body.append(script);
    });
    await expect(page.title()).resolves.toBe('Get your workshop VM · LabLink');
    expect(violations).toEqual(['script-src-elem inline']);
  });

  it('runs every page’s own script and style with no violation: form, VM page, dashboard, confirmation, log', async () => {
    const assigned = await requestVm(suite.env.db.sql, { email: 'csp@example.com', crdCommand: crdCommand() });
    if (assigned.kind !== 'assigned') throw new Error('expected an assignment');

    const { context, violations } = await watchedContext(true);
    const page = await context.newPage();
    const countRefreshed = page.waitForResponse((response) => response.url().endsWith('/api/unassigned_vms_count'));
    await page.goto(`${suite.env.url}/`);
    await countRefreshed;
    // The stylesheet applied: the status line has its colour from the stylesheet, not the browser's default.
    await expect(page.locator('#free-count').evaluate((el) => getComputedStyle(el).borderLeftStyle)).resolves.toBe('solid');

    await page.goto(`${suite.env.url}/vm/${assigned.assignmentId}`);
    await page.getByRole('button', { name: 'Copy PIN' }).waitFor({ state: 'visible' });
    await page.waitForResponse((response) => response.url().endsWith(`/api/assignment/${assigned.assignmentId}`));

    await page.goto(`${suite.env.url}/admin`);
    await page.getByLabel('Filter').fill('csp@');
    await expect(page.locator('#vm-rows tr:not([hidden])').count()).resolves.toBe(1);
    await page.goto(`${suite.env.url}/admin/vms/${assigned.hostname}/release`);
    await page.goto(`${suite.env.url}/admin/vms/${assigned.hostname}/logs`);
    expect(violations).toEqual([]);
  });
});
