import { useStackAndBrowser } from '../../support/suite';
import { requestVm } from '../../../store/assignment';
import { recordPoll } from '../../../store/vms';
import { accessibilityViolations } from '../../support/axe';
import { TEST_ADMIN_SECRET, TEST_FLEET_TOKEN, crdCommand } from '../../support/fixtures';
import { freeCount, sendLogsAsVm } from '../../support/stack';

describe('admin dashboard in a real Chromium against local mode', () => {
  const suite = useStackAndBrowser(undefined, async (env) => {
    for (const name of ['dash-vm-1', 'dash-vm-2']) await recordPoll(env.db.sql, name, 600);
  });

  it('refuses the dashboard without the admin secret', async () => {
    // Chromium answers a Basic challenge it cannot meet by abandoning the navigation: the dashboard never loads.
    const refused = (password?: string) => async () => {
      const context = await suite.browser.newContext(password ? { httpCredentials: { username: 'admin', password } } : {});
      const page = await context.newPage();
      const outcome = await page.goto(`${suite.env.url}/admin`).then(
        (response) => `status ${response?.status()}`,
        (error: Error) => error.message,
      );
      expect(outcome).toMatch(/status 401|ERR_INVALID_AUTH_CREDENTIALS/);
    };
    await refused()();
    await refused('guessed-password-123')();
  });

  it('shows the assigned VM, releases it after confirmation, and the free count goes back up', async () => {
    const assigned = await requestVm(suite.env.db.sql, { email: 'ines@example.com', crdCommand: crdCommand() });
    if (assigned.kind !== 'assigned') throw new Error('expected an assignment');
    expect(await freeCount(suite.env.url)).toBe(1);

    const context = await suite.browser.newContext({ httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET } });
    const page = await context.newPage();
    await page.goto(`${suite.env.url}/admin`);
    const row = page.locator('#vm-rows tr', { hasText: assigned.hostname });
    await expect(row.locator('td').nth(0).textContent()).resolves.toBe('assigned');
    await expect(row.locator('td').nth(1).textContent()).resolves.toBe('ines@example.com');
    await expect(page.content()).resolves.not.toContain(assigned.pin);
    expect(await accessibilityViolations(page)).toEqual([]);

    await page.getByLabel('Filter').fill('ines');
    await expect(page.locator('#vm-rows tr:not([hidden])').count()).resolves.toBe(1);
    await expect(page.locator('#summary').textContent()).resolves.toBe('2 VMs, 1 free, 1 shown');

    await row.getByRole('link', { name: 'Release and reset' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe(`Release and reset: ${assigned.hostname}?`);
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.getByRole('button', { name: 'Release and reset' }).click();
    await page.waitForURL(/\/admin$/);
    await expect(page.getByRole('status').first().textContent()).resolves.toBe(
      `${assigned.hostname} was released; it is free again once its agent has reset it.`,
    );
    await expect(row.locator('td').nth(0).textContent()).resolves.toBe('resetting');
    expect(await freeCount(suite.env.url)).toBe(1);
    // Its agent wipes the desktop and says so (the real agent does this in test/agent/desktop-reset.test.ts).
    await fetch(`${suite.env.url}/vm_reset`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_FLEET_TOKEN}` },
      body: JSON.stringify({ hostname: assigned.hostname, outcome: 'done' }),
    });
    expect(await freeCount(suite.env.url)).toBe(2);

    await page.getByRole('link', { name: 'End of session: release and reset every VM' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('End of session: release and reset every VM?');
    expect(await accessibilityViolations(page)).toEqual([]);
    await page.getByRole('link', { name: 'Cancel' }).click();
    await page.waitForURL(/\/admin$/);
    expect(await freeCount(suite.env.url)).toBe(2);

    const form = await context.newPage();
    await form.goto(`${suite.env.url}/`);
    await expect(form.locator('#free-count').textContent()).resolves.toBe('2 VMs are free right now.');
  });

  it('opens a VM’s log from the list: errors first, an errors-only view, no accessibility violations', async () => {
    const at = new Date().toISOString();
    const sent = await sendLogsAsVm(suite.env.url, {
      hostname: 'dash-vm-2',
      step: 'install-node',
      lines: [
        { at, level: 'info', source: 'boot', text: 'Reading package lists...' },
        { at, level: 'error', source: 'boot', text: 'curl: (22) The requested URL returned error: 404' },
      ],
    });
    expect(sent.status).toBe(200);

    const context = await suite.browser.newContext({ httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET } });
    const page = await context.newPage();
    await page.goto(`${suite.env.url}/admin`);
    await page.locator('#vm-rows tr', { hasText: 'dash-vm-2' }).getByRole('link', { name: '1 log error' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Log of dash-vm-2');
    await expect(page.getByRole('heading', { level: 2 }).allTextContents()).resolves.toEqual(['Errors (1)', 'All lines, oldest first (2)']);
    await expect(page.locator('table').first().locator('tbody td.log-text').allTextContents()).resolves.toEqual([
      'curl: (22) The requested URL returned error: 404',
    ]);
    expect(await accessibilityViolations(page)).toEqual([]);

    await page.getByRole('link', { name: 'Errors only' }).click();
    await expect(page.locator('td.log-text').allTextContents()).resolves.toEqual(['curl: (22) The requested URL returned error: 404']);
    await expect(page.getByRole('link', { name: 'Download as text' }).getAttribute('href')).resolves.toBe('/admin/vms/dash-vm-2/logs.txt');
    expect(await accessibilityViolations(page)).toEqual([]);
  });

  it.each([
    ['with JavaScript', true],
    ['without JavaScript', false],
  ])(
    'on a phone %s: problems first and marked, the table scrolls in its own box, columns sort both ways',
    async (_case, javaScriptEnabled) => {
      await suite.env.db.pool.query(`UPDATE vms SET failed_at = now(), failure = 'GPU is lost' WHERE hostname = 'dash-vm-2'`);
      const context = await suite.browser.newContext({
        javaScriptEnabled,
        viewport: { width: 360, height: 740 },
        httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET },
      });
      const page = await context.newPage();
      await page.goto(`${suite.env.url}/admin`);
      const names = () => page.locator('#vm-rows tr th').allTextContents();
      await expect(names()).resolves.toEqual(['dash-vm-2', 'dash-vm-1']);
      await expect(page.locator('#tiles li').allTextContents()).resolves.toEqual(['1 failed', '1 free']);
      const firstRow = await page
        .locator('#vm-rows tr')
        .first()
        .evaluate((row) => getComputedStyle(row).backgroundColor);
      const secondRow = await page
        .locator('#vm-rows tr')
        .nth(1)
        .evaluate((row) => getComputedStyle(row).backgroundColor);
      expect(firstRow).not.toBe(secondRow);
      await expect(page.locator('th[aria-sort]').allTextContents()).resolves.toEqual(['Health ▲']);

      const sideways = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(sideways).toBeLessThanOrEqual(0);
      const box = await page.locator('.table-wrap').evaluate((wrap) => wrap.scrollWidth > wrap.clientWidth);
      expect(box).toBe(true);

      await page.getByRole('link', { name: 'VM', exact: true }).click();
      await page.waitForURL(/sort=hostname&dir=asc/);
      await expect(page.locator('th[aria-sort]').getAttribute('aria-sort')).resolves.toBe('ascending');
      await expect(names()).resolves.toEqual(['dash-vm-1', 'dash-vm-2']);
      await page.getByRole('link', { name: 'VM', exact: true }).click();
      await page.waitForURL(/sort=hostname&dir=desc/);
      await expect(page.locator('th[aria-sort]').getAttribute('aria-sort')).resolves.toBe('descending');
      await expect(names()).resolves.toEqual(['dash-vm-2', 'dash-vm-1']);
      if (javaScriptEnabled) expect(await accessibilityViolations(page)).toEqual([]);
      await suite.env.db.pool.query(`UPDATE vms SET failed_at = NULL, failure = NULL WHERE hostname = 'dash-vm-2'`);
    },
  );

  it('at 1366×768, keyboard only: a refresh keeps the focus and the scroll, "error" finds only the VM with one, long reasons leave Actions in view', async () => {
    const longReason = `Setup failed at setup-script: exited with status 2. Last lines: ${'pip could not resolve the pinned versions of the workshop packages | '.repeat(6)}`;
    await suite.env.db.pool.query(`UPDATE vms SET failed_at = now(), failure = $1, alive_until = now() WHERE hostname = 'dash-vm-2'`, [
      longReason,
    ]);
    for (const name of ['dash-vm-3', 'dash-vm-4', 'dash-vm-5', 'dash-vm-6']) await recordPoll(suite.env.db.sql, name, 600);
    await suite.env.db.pool.query(
      `UPDATE vms SET state = 'error', email = 'kim@example.com', assigned_at = now(), error = 'start-host exited with code 1: host error 12' WHERE hostname = 'dash-vm-6'`,
    );
    const context = await suite.browser.newContext({
      viewport: { width: 1366, height: 768 },
      httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET },
    });
    const page = await context.newPage();
    await page.goto(`${suite.env.url}/admin`);
    expect(await accessibilityViolations(page)).toEqual([]);
    await expect(page.locator('.table-wrap').evaluate((wrap) => wrap.scrollWidth - wrap.clientWidth)).resolves.toBeLessThanOrEqual(0);
    const actions = await page.locator('#vm-rows tr[data-hostname="dash-vm-2"] td.actions').boundingBox();
    expect(actions!.x + actions!.width).toBeLessThanOrEqual(1366);

    // Keyboard only: Tab to the failed setup's one action.
    const rerun = '/admin/vms/dash-vm-2/rerun-setup';
    for (let presses = 0; presses < 80; presses += 1) {
      if ((await page.evaluate(() => document.activeElement?.getAttribute('href'))) === rerun) break;
      await page.keyboard.press('Tab');
    }
    await expect(page.evaluate(() => document.activeElement?.getAttribute('href'))).resolves.toBe(rerun);
    const scrolled = await page.evaluate(() => window.scrollY);
    // Another VM changes; the next refresh brings it in without moving the focus.
    await suite.env.db.pool.query(
      `UPDATE vms SET state = 'assigned', email = 'lee@example.com', assigned_at = now() WHERE hostname = 'dash-vm-1'`,
    );
    await page.locator('#vm-rows tr[data-hostname="dash-vm-1"][data-status="assigned"]').waitFor({ timeout: 15_000 });
    await expect(page.locator('#tiles li[data-status="assigned"]').textContent()).resolves.toBe('1 assigned');
    await expect(page.evaluate(() => document.activeElement?.getAttribute('href'))).resolves.toBe(rerun);
    await expect(page.evaluate(() => window.scrollY)).resolves.toBe(scrolled);

    await page.getByLabel('Filter').focus();
    await page.keyboard.type('error');
    await expect(
      page.locator('#vm-rows tr:not([hidden])').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-hostname'))),
    ).resolves.toEqual(['dash-vm-6']);
    await page.getByLabel('Filter').fill('');
    await suite.env.db.pool.query(
      `UPDATE vms SET state = 'waiting', email = NULL, error = NULL, assigned_at = NULL, failed_at = NULL, failure = NULL, alive_until = now() + interval '10 minutes' WHERE hostname IN ('dash-vm-1', 'dash-vm-2', 'dash-vm-6')`,
    );
  }, 30_000);

  it('reads a VM’s log on a 360-wide phone: each line across the width, no accessibility violations', async () => {
    const at = new Date().toISOString();
    await sendLogsAsVm(suite.env.url, {
      hostname: 'dash-vm-3',
      step: 'setup-script',
      lines: [
        {
          at,
          level: 'warn',
          source: 'setup',
          text: 'Collecting numpy==1.26.4 (from -r requirements.txt (line 3)) Downloading numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.whl',
        },
      ],
    });
    const context = await suite.browser.newContext({
      viewport: { width: 360, height: 740 },
      httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET },
    });
    const page = await context.newPage();
    await page.goto(`${suite.env.url}/admin/vms/dash-vm-3/logs`);
    expect(await accessibilityViolations(page)).toEqual([]);
    await expect(page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).resolves.toBeLessThanOrEqual(0);
    const line = await page.locator('td.log-text').first().boundingBox();
    expect(line!.width).toBeGreaterThan(250);
  });

  it('focuses Cancel first on a confirmation page, so Enter changes nothing', async () => {
    const context = await suite.browser.newContext({ httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET } });
    const page = await context.newPage();
    await page.goto(`${suite.env.url}/admin/vms/dash-vm-1/release`);
    await expect(page.evaluate(() => document.activeElement?.textContent)).resolves.toBe('Cancel');
    expect(await accessibilityViolations(page)).toEqual([]);
    const before = await suite.env.db.dumpVms();
    await page.keyboard.press('Enter');
    await page.waitForURL(`${suite.env.url}/admin`);
    expect(await suite.env.db.dumpVms()).toEqual(before);
  });
});
