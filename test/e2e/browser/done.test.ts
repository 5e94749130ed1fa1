import { useStackAndBrowser } from '../../support/suite';
import { Page } from 'playwright-core';
import { recordPoll } from '../../../store/vms';
import { dumpDatabase } from '../../support/database';
import { crdCommand } from '../../support/fixtures';

/** "I'm done" on the participant's page, in a real Chromium against the local stack and PostgreSQL. */
describe('the participant\'s "I\'m done"', () => {
  const suite = useStackAndBrowser();

  beforeEach(async () => {
    await suite.env.db.pool.query('DELETE FROM vms');
    await recordPoll(suite.env.db.sql, 'done-vm-1', 600);
  });

  async function requestVmIn(page: Page, email: string): Promise<void> {
    await page.goto(`${suite.env.url}/`);
    await page.getByLabel('Your email').fill(email);
    await page.getByLabel('The Debian Linux command from step 1').fill(crdCommand());
    await page.getByRole('button', { name: 'Get my VM' }).click();
    await page.waitForURL(/\/vm\/[0-9a-f-]{36}$/);
  }
  const vmRow = async () => (await suite.env.db.pool.query(`SELECT state, email FROM vms WHERE hostname = 'done-vm-1'`)).rows[0];

  it.each([
    ['with JavaScript', true],
    ['without JavaScript', false],
  ])(
    '%s: asks first, saying files are deleted; Cancel keeps the VM; confirming gives it back and it is reset',
    async (_name, javaScriptEnabled) => {
      const context = await suite.browser.newContext({ javaScriptEnabled });
      const page = await context.newPage();
      await requestVmIn(page, 'done@example.com');
      const vmUrl = page.url();

      await page.getByRole('link', { name: "I'm done with done-vm-1" }).click();
      await expect(page.locator('h1').textContent()).resolves.toBe('Give done-vm-1 back?');
      await expect(page.locator('main').textContent()).resolves.toContain('your files on it are deleted');
      await page.getByRole('link', { name: 'Cancel' }).click();
      expect(page.url()).toBe(vmUrl);
      expect(await vmRow()).toEqual({ state: 'assigned', email: 'done@example.com' });

      await page.getByRole('link', { name: "I'm done with done-vm-1" }).click();
      await page.getByRole('button', { name: "Yes, I'm done: give it back" }).click();
      await page.waitForURL(/\?outcome=done$/);
      await expect(page.locator('#done').textContent()).resolves.toBe('You gave done-vm-1 back. Thank you!');
      expect(await vmRow()).toEqual({ state: 'resetting', email: null });
      await context.close();
    },
  );

  it('another browser with the same link, holding a VM of its own, cannot give this VM back: told to ask the instructor, nothing changes', async () => {
    await recordPoll(suite.env.db.sql, 'done-vm-2', 600);
    const owner = await suite.browser.newContext();
    const ownerPage = await owner.newPage();
    await requestVmIn(ownerPage, 'owner@example.com');
    const stranger = await suite.browser.newContext();
    const page = await stranger.newPage();
    await requestVmIn(page, 'stranger@example.com');
    await page.goto(`${ownerPage.url()}/done`);
    const before = await dumpDatabase(suite.env.db.pool);
    const [response] = await Promise.all([
      page.waitForResponse((answer) => answer.request().method() === 'POST'),
      page.getByRole('button', { name: "Yes, I'm done: give it back" }).click(),
    ]);
    expect(response.status()).toBe(403);
    await expect(page.locator('#not-yours').textContent()).resolves.toBe(
      'Only the browser that asked for this VM can give it back. If you need that, ask your instructor.',
    );
    expect(await dumpDatabase(suite.env.db.pool)).toBe(before);
    expect(await vmRow()).toEqual({ state: 'assigned', email: 'owner@example.com' });
    await owner.close();
    await stranger.close();
  });
});
