import path from 'node:path';
import { newAppRole } from '../store/app-role';
import { createLogger, silentLogger } from '../core/log';
import { generateSecret } from '../core/secrets';
import { launchChromium } from '../local/chromium';
import { startLocalPostgres } from '../local/postgres';
import { runMain } from '../local/run-main';
import { startSimulatedFleet } from '../local/simulated-fleet';
import { startLocalStack } from '../local/stack';

const DOCS = path.join(__dirname, '..', 'docs');
const EXAMPLE_COMMAND =
  'DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="4/0AanRJrjkgQexampleexampleexample" --redirect-url="https://remotedesktop.google.com/_/oauthredirect" --name=$(hostname)';

/** Renders the form (also with mistakes, on a phone), a participant's VM page (ready, released, failed) and the admin dashboard from a real local run into docs/. */
async function main(): Promise<void> {
  const log = createLogger('text');
  const postgres = await startLocalPostgres();
  const fleetToken = generateSecret();
  const adminSecret = generateSecret();
  const stack = await startLocalStack({
    databaseUrl: postgres.url,
    appRole: newAppRole(),
    fleetToken,
    adminSecret,
    holdSeconds: 2,
    log: silentLogger,
  });
  const fleet = await startSimulatedFleet({ count: 4, allocatorUrl: stack.url, fleetToken });
  const browser = await launchChromium();
  const adminPost = (route: string) =>
    fetch(`${stack.url}${route}`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`admin:${adminSecret}`).toString('base64')}` },
    });
  try {
    const context = await browser.newContext({
      viewport: { width: 900, height: 1000 },
      httpCredentials: { username: 'admin', password: adminSecret },
    });
    const page = await context.newPage();
    await page.goto(`${stack.url}/`);
    await page.waitForFunction(() => document.getElementById('free-count')?.textContent?.startsWith('4 VMs'));
    await page.screenshot({ path: path.join(DOCS, 'form.png'), fullPage: true });

    // A participant's mistakes, on a phone: the summary at the top has the focus.
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await phone.goto(`${stack.url}/`);
    await phone.getByLabel('Your email').fill('ada@gmial.com');
    await phone.getByLabel('The Debian Linux command from step 1').fill(EXAMPLE_COMMAND.slice(0, 90));
    await phone.getByRole('button', { name: 'Get my VM' }).click();
    await phone.waitForSelector('#error-summary');
    await phone.screenshot({ path: path.join(DOCS, 'form-errors.png') });
    await phone.close();

    await page.getByLabel('Your email').fill('ada@example.com');
    await page.getByLabel('The Debian Linux command from step 1').fill(EXAMPLE_COMMAND);
    await page.getByRole('button', { name: 'Get my VM' }).click();
    await page.waitForSelector('#progress[data-progress="ready"]');
    await page.screenshot({ path: path.join(DOCS, 'vm-ready.png'), fullPage: true });

    // The admin takes the VM back: the open page says so.
    const hostname = await page.locator('#hostname').textContent();
    await adminPost(`/api/vms/${hostname}/release`);
    await page.waitForSelector('#progress[data-progress="released"]');
    await page.screenshot({ path: path.join(DOCS, 'vm-released.png'), fullPage: true });

    // A command Google no longer accepts: once reset, the same VM is first in line again, and
    // its stand-in start-host refuses a code it has seen.
    await page.goto(`${stack.url}/`);
    await page.waitForFunction(() => document.getElementById('free-count')?.textContent?.startsWith('4 VMs'));
    await page.getByLabel('Your email').fill('grace@example.com');
    await page.getByLabel('The Debian Linux command from step 1').fill(EXAMPLE_COMMAND);
    await page.getByRole('button', { name: 'Get my VM' }).click();
    await page.waitForSelector('#progress[data-progress="failed"]');
    await page.locator('details summary').click();
    await page.screenshot({ path: path.join(DOCS, 'vm-failed.png'), fullPage: true });

    await page.setViewportSize({ width: 1440, height: 600 });
    await page.goto(`${stack.url}/admin`);
    await page.waitForSelector('#vm-rows tr');
    await page.screenshot({ path: path.join(DOCS, 'admin.png'), fullPage: true });
    log.info('screenshots.saved', { folder: DOCS });
  } finally {
    await browser.close();
    await fleet.stop();
    await stack.close();
    await postgres.stop();
  }
}

runMain(main);
