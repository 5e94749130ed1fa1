import { useStackAndBrowser } from '../../support/suite';
import { accessibilityViolations } from '../../support/axe';
import { TEST_ADMIN_SECRET } from '../../support/fixtures';

describe("the dashboard's last go / no-go check, in a real Chromium", () => {
  const suite = useStackAndBrowser();

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
    const posted = await fetch(`${suite.env.url}/api/go-no-go`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ lines }),
    });
    expect(posted.status).toBe(201);

    const context = await suite.browser.newContext({ httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET } });
    const page = await context.newPage();
    await page.goto(`${suite.env.url}/admin`);
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
