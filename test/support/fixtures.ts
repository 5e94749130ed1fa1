import { randomBytes } from 'node:crypto';

/** A unique code of the shape Google issues, so the stand-in never sees one twice. */
export function fakeCode(): string {
  return `4/0Aan${randomBytes(30).toString('base64url')}`;
}

export function crdCommand(code = fakeCode()): string {
  return `DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="${code}" --redirect-url="https://remotedesktop.google.com/_/oauthredirect" --name=$(hostname)`;
}

export const TEST_FLEET_TOKEN = 'test-fleet-token-0123456789';
export const TEST_ADMIN_SECRET = 'test-admin-secret-0123456789';

/** Polls `check` until it returns a value other than undefined, null or false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
