import { Browser } from 'playwright-core';
import { CHROMIUM_INSTALL_TIMEOUT_MS, launchChromium } from '../../local/chromium';
import { TestStack, startTestStack } from './stack';

type StackOptions = Parameters<typeof startTestStack>[0];

/** A describe block's local stack: started before its tests, closed after them (read `suite.env` inside a test). */
export function useTestStack(options?: StackOptions): { readonly env: TestStack } {
  const suite = {} as { env: TestStack };
  beforeAll(async () => {
    suite.env = await startTestStack(options);
  });
  afterAll(async () => suite.env?.close());
  return suite;
}

/** The same with a Chromium beside it; `prepare` runs once the stack is up (to register VMs, say). */
export function useStackAndBrowser(
  options?: StackOptions,
  prepare?: (env: TestStack) => Promise<void>,
): { readonly env: TestStack; readonly browser: Browser } {
  const suite = {} as { env: TestStack; browser: Browser };
  beforeAll(async () => {
    suite.env = await startTestStack(options);
    await prepare?.(suite.env);
    suite.browser = await launchChromium();
  }, CHROMIUM_INSTALL_TIMEOUT_MS);
  afterAll(async () => {
    await suite.browser?.close();
    await suite.env?.close();
  });
  return suite;
}
