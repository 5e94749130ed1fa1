import { Browser, Page } from 'playwright-core';
import { recordPoll } from '../../../store/vms';
import { SETTLED_POLL_SECONDS } from '../../../contract/page-polling';
import { CHROMIUM_INSTALL_TIMEOUT_MS, launchChromium } from '../../../local/chromium';
import { useAgentHarness } from '../../support/agent-harness';
import { accessibilityViolations } from '../../support/axe';
import { TEST_ADMIN_SECRET, crdCommand } from '../../support/fixtures';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;

describe('a participant’s open VM page tells the truth, in a real Chromium (real agents, stand-in start-host)', () => {
  const harness = useAgentHarness();
  let browser: Browser;

  beforeAll(async () => {
    browser = await launchChromium();
  }, CHROMIUM_INSTALL_TIMEOUT_MS);
  afterAll(async () => browser?.close());

  async function requestInBrowser(email: string, options: { javaScriptEnabled?: boolean } = {}): Promise<Page> {
    const context = await browser.newContext(options);
    // Time runs normally; a test jumps ahead over a settled page's slow checks.
    await context.clock.install();
    const page = await context.newPage();
    await page.goto(`${harness.env.url}/`);
    await page.getByLabel('Your email').fill(email);
    await page.getByLabel('The Debian Linux command from step 1').fill(crdCommand());
    await page.getByRole('button', { name: 'Get my VM' }).click();
    await page.waitForURL(/\/vm\/[0-9a-f-]{36}/);
    return page;
  }

  function admin(path: string): Promise<Response> {
    return fetch(`${harness.env.url}${path}`, { method: 'POST', headers: { authorization: ADMIN } });
  }

  it('a failed start-host: the explanation first, the raw message folded away, and "Get a new command" keeps the email', async () => {
    await harness.startVm('state-fail', { startHostFailure: 'OAuth error: invalid_grant' });
    const page = await requestInBrowser('fail@example.com');
    await page.waitForSelector('#progress[data-progress="failed"]');
    await expect(page.locator('#explanation').textContent()).resolves.toBe(
      'Google did not accept your command: each command works only once and only for a few minutes, and this one had expired or was already used.',
    );
    await expect(page.locator('#raw-error').isVisible()).resolves.toBe(false);
    await page.getByText('What state-fail reported').click();
    await expect(page.locator('#raw-error').textContent()).resolves.toMatch(/start-host exited with code 1: OAuth error: invalid_grant/);
    expect(await accessibilityViolations(page)).toEqual([]);

    await page.getByRole('link', { name: 'Get a new command' }).click();
    await page.waitForURL(/\/\?email=/);
    await expect(page.getByLabel('Your email').inputValue()).resolves.toBe('fail@example.com');
  });

  it('start-host failing twice on one VM for a reason other than the command: the participant is sent to the instructor, who sees who is stuck', async () => {
    await harness.startVm('state-stuck', { startHostFailure: 'Failed to start the session: the desktop user has no home' });
    const page = await requestInBrowser('stuck@example.com');
    await page.waitForSelector('#progress[data-progress="failed"]');
    // Once may be the command: a new one is the next step.
    await expect(page.getByRole('link', { name: 'Get a new command' }).isVisible()).resolves.toBe(true);
    await page.getByRole('link', { name: 'Get a new command' }).click();
    await page.waitForURL(/\/\?email=/);
    await page.getByLabel('The Debian Linux command from step 1').fill(crdCommand());
    await page.getByRole('button', { name: 'Get my VM' }).click();
    await page.waitForURL(/outcome=retried/);
    await page.waitForSelector('#progress[data-progress="failed"]');
    await expect(page.locator('#progress').textContent()).resolves.toBe('Chrome Remote Desktop keeps failing on state-stuck.');
    await expect(page.locator('#next-step').textContent()).resolves.toContain(
      "Ask your instructor and tell them your VM's name, state-stuck.",
    );
    await expect(page.getByRole('link', { name: 'Get a new command' }).count()).resolves.toBe(0);
    expect(await accessibilityViolations(page)).toEqual([]);

    const dashboard = await (await fetch(`${harness.env.url}/admin`, { headers: { authorization: ADMIN } })).text();
    const row = dashboard.slice(
      dashboard.indexOf('<tr data-hostname="state-stuck"'),
      dashboard.indexOf('</tr>', dashboard.indexOf('<tr data-hostname="state-stuck"')),
    );
    expect(row).toContain('data-status="participant-stuck" class="problem"');
    expect(row).toContain('stuck@example.com');
    expect(row).toContain('href="/admin/vms/state-stuck/move"');
  });

  it('released while open: the page says so at its next check, and that the old CRD entry can be removed', async () => {
    await harness.startVm('state-release');
    const page = await requestInBrowser('released@example.com');
    await page.waitForSelector('#progress[data-progress="ready"]');
    await expect(page.title()).resolves.toBe('Ready: your VM state-release · LabLink');
    // The status line is a live region: it must be the same element after the change for a screen reader to read its new words.
    await page.evaluate(() => ((document.getElementById('progress') as HTMLElement & { marked?: boolean }).marked = true));
    expect((await admin('/api/vms/state-release/release')).status).toBe(200);

    await page.clock.fastForward(SETTLED_POLL_SECONDS * 1000);
    await page.waitForSelector('#progress[data-progress="released"]');
    await expect(page.evaluate(() => (document.getElementById('progress') as HTMLElement & { marked?: boolean }).marked)).resolves.toBe(
      true,
    );
    await expect(page.locator('#progress').getAttribute('aria-live')).resolves.toBe('polite');
    await expect(page.title()).resolves.toBe('Taken back: your VM state-release · LabLink');
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Your VM was taken back');
    await expect(page.locator('#progress').textContent()).resolves.toBe('The instructor has taken state-release back.');
    await expect(page.locator('main').textContent()).resolves.toContain('shown as offline: you can remove it there.');
    await expect(page.locator('#next-step').textContent()).resolves.toContain(
      "Ask your instructor and tell them your VM's name, state-release.",
    );
    await expect(page.locator('#pin').count()).resolves.toBe(0);
    expect(await accessibilityViolations(page)).toEqual([]);
  });

  it('a VM that stops reporting: "ask your instructor" with its name; moved, the page follows to the new VM', async () => {
    const dying = await harness.startVm('state-dies');
    const page = await requestInBrowser('stale@example.com');
    await page.waitForSelector('#progress[data-progress="ready"]');
    await dying.stop('SIGKILL');
    await harness.env.db.pool.query(`UPDATE vms SET health_reported_at = now() - interval '10 minutes' WHERE hostname = 'state-dies'`);

    await page.clock.fastForward(SETTLED_POLL_SECONDS * 1000);
    await page.waitForSelector('#progress[data-progress="broken"]');
    await expect(page.locator('#progress').textContent()).resolves.toBe('state-dies has stopped working.');
    await expect(page.locator('#next-step').textContent()).resolves.toContain(
      "Ask your instructor and tell them your VM's name, state-dies.",
    );
    expect(await accessibilityViolations(page)).toEqual([]);

    await harness.startVm('state-spare');
    expect((await admin('/api/vms/state-dies/move')).status).toBe(200);
    await page.waitForSelector('#moved');
    await expect(page.locator('#hostname').textContent()).resolves.toBe('state-spare');
    await expect(page.locator('#progress').getAttribute('data-progress')).resolves.toBe('failed');
    await expect(page.getByRole('link', { name: 'Get a new command' }).getAttribute('href')).resolves.toBe('/?email=stale%40example.com');
    expect(await accessibilityViolations(page)).toEqual([]);
  });

  it.each([
    ['with JavaScript', true],
    ['without JavaScript', false],
  ])('setting up for too long shows the time it took and what to do, %s', async (_case, javaScriptEnabled) => {
    // A VM whose agent never picks the request up.
    const hostname = `state-slow-${javaScriptEnabled ? 'js' : 'nojs'}`;
    await recordPoll(harness.env.db.sql, hostname, 600);
    const page = await requestInBrowser(`${hostname}@example.com`, { javaScriptEnabled });
    await expect(page.locator('#slow').isVisible()).resolves.toBe(false);
    await harness.env.db.pool.query(`UPDATE vms SET assigned_at = now() - interval '3 minutes' WHERE hostname = $1`, [hostname]);
    await page.reload();
    await expect(page.locator('#elapsed').textContent()).resolves.toMatch(/^Started 3 min \d+ s ago\./);
    await expect(page.locator('#slow').isVisible()).resolves.toBe(true);
    await expect(page.locator('#slow').textContent()).resolves.toContain(`Ask your instructor and tell them your VM's name, ${hostname}.`);
    if (javaScriptEnabled) expect(await accessibilityViolations(page)).toEqual([]);
    else await expect(page.locator('noscript').first().innerHTML()).resolves.toBe('<meta http-equiv="refresh" content="10">');
    await harness.env.db.pool.query(`UPDATE vms SET alive_until = now() WHERE hostname = $1`, [hostname]);
  });
});
