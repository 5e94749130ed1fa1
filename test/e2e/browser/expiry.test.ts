import { Browser } from 'playwright-core';
import { CHROMIUM_INSTALL_TIMEOUT_MS, launchChromium } from '../../../local/chromium';
import { recordPoll } from '../../../store/vms';
import { crdCommand } from '../../support/fixtures';
import { TestStack, startTestStack, submitForm } from '../../support/stack';

/** The workshop's end on the participant's page (`expiresAt`), in a real Chromium on a simulated clock. */
describe('the end is never a surprise', () => {
  let browser: Browser;
  const stacks: TestStack[] = [];
  beforeAll(async () => {
    browser = await launchChromium();
  }, CHROMIUM_INSTALL_TIMEOUT_MS);
  afterAll(async () => {
    await browser?.close();
    await Promise.all(stacks.map((stack) => stack.close()));
  });

  /** A stack whose workshop ends `minutes` from now, and the VM page of a participant on it. */
  async function vmPageEndingIn(minutes: number): Promise<{ env: TestStack; vmUrl: string }> {
    const env = await startTestStack({ expiresAt: new Date(Date.now() + minutes * 60_000).toISOString() });
    stacks.push(env);
    await recordPoll(env.db.sql, 'end-vm-1', 600);
    const response = await submitForm(env.url, { email: 'end@example.com', crd_command: crdCommand() });
    const { status } = (await response.json()) as { status: string };
    return { env, vmUrl: `${env.url}/vm/${status.split('/').pop()}` };
  }

  it('shows the time left; 10 minutes before the end it warns that the VM and the files on it go', async () => {
    const { vmUrl } = await vmPageEndingIn(12);
    const context = await browser.newContext();
    await context.clock.install();
    const page = await context.newPage();
    await page.goto(vmUrl);
    await expect(page.locator('#expiry-left').textContent()).resolves.toBe('12 min');
    await expect(page.locator('#expiry-warning').isVisible()).resolves.toBe(false);

    await page.clock.fastForward(3 * 60_000);
    await expect(page.locator('#expiry-warning').isVisible()).resolves.toBe(true);
    await expect(page.locator('#expiry-warning').textContent()).resolves.toBe(
      'The workshop ends in 9 min. Your VM then stops, and it is deleted with all your files on it: save or download what you want to keep now.',
    );
    await context.close();
  });

  it('without JavaScript, a page loaded in the last 10 minutes carries the warning', async () => {
    const { vmUrl } = await vmPageEndingIn(5);
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(vmUrl);
    await expect(page.locator('#expiry-warning').isVisible()).resolves.toBe(true);
    await expect(page.locator('#expiry-warning').textContent()).resolves.toMatch(
      /^The workshop ends in 5 min\. .*deleted with all your files on it/,
    );
    await context.close();
  });
});
