import { useStackAndBrowser } from '../../support/suite';
import { Page } from 'playwright-core';
import { recordPoll } from '../../../store/vms';
import { TEST_ADMIN_SECRET, crdCommand } from '../../support/fixtures';

/** A participant on a new browser: the attempt on the dashboard, the admin's one-time link, in a real Chromium against the local stack. */
describe('handing a VM to a new browser', () => {
  const suite = useStackAndBrowser();

  async function submit(page: Page, email: string): Promise<void> {
    await page.goto(`${suite.env.url}/`);
    await page.getByLabel('Your email').fill(email);
    await page.getByLabel('The Debian Linux command from step 1').fill(crdCommand());
    await page.getByRole('button', { name: 'Get my VM' }).click();
    await page.waitForLoadState();
  }

  it('the new browser is refused, the admin sees it and sends a link, the new browser (without JavaScript) gets the VM and the old one loses it', async () => {
    await recordPoll(suite.env.db.sql, 'hand-vm-1', 600);
    const old = await (await suite.browser.newContext()).newPage();
    await submit(old, 'ada@example.com');
    await old.waitForURL(/\/vm\/[0-9a-f-]{36}$/);
    const vmUrl = old.url();
    const pin = await old.locator('#pin').textContent();
    await suite.env.db.pool.query(`UPDATE vms SET assigned_at = now() - interval '1 minute'`);

    const fresh = await (await suite.browser.newContext({ javaScriptEnabled: false })).newPage();
    await submit(fresh, 'ada@example.com');
    await expect(fresh.locator('main').textContent()).resolves.toContain('This email already has a VM, asked for from another browser.');
    await expect(fresh.locator('main').textContent()).resolves.not.toContain(pin!);

    const admin = await (await suite.browser.newContext({ httpCredentials: { username: 'admin', password: TEST_ADMIN_SECRET } })).newPage();
    await admin.goto(`${suite.env.url}/admin`);
    const attempts = admin.locator('#email-attempts');
    await expect(attempts.locator('tbody tr td').nth(1).textContent()).resolves.toBe('ada@example.com');
    await expect(attempts.locator('tbody tr td').nth(2).textContent()).resolves.toBe('hand-vm-1');
    await attempts.getByRole('link', { name: 'Hand over to a new browser' }).click();
    await admin.getByRole('button', { name: 'Create the link' }).click();
    const link = await admin.locator('#handover-link').inputValue();
    expect(link).toMatch(/\/handover\/[\w-]{32}$/);

    await fresh.goto(link);
    await fresh.getByRole('button', { name: 'Use hand-vm-1 in this browser' }).click();
    await fresh.waitForURL(vmUrl);
    await expect(fresh.locator('#pin').textContent()).resolves.toBe(pin);

    // The old browser can no longer give the VM back; the new one can.
    await old.goto(`${vmUrl}/done`);
    await old.getByRole('button', { name: "Yes, I'm done: give it back" }).click();
    await expect(old.locator('#not-yours').isVisible()).resolves.toBe(true);
    await fresh.goto(`${vmUrl}/done`);
    await fresh.getByRole('button', { name: "Yes, I'm done: give it back" }).click();
    await fresh.waitForURL(/\?outcome=done$/);

    // The link was used: a second visit says so.
    await fresh.goto(link);
    await expect(fresh.locator('h1').textContent()).resolves.toBe('This link was already used');
  });
});
