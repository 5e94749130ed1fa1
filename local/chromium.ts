import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Browser, chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.LABLINK_CHROMIUM_PATH ?? '/usr/bin/chromium';

/** How long a first launch may take: the install, after waiting for another apt run (up to 5 minutes). */
export const CHROMIUM_INSTALL_TIMEOUT_MS = 10 * 60_000;

/** Held while installing, so parallel jest workers install once: the others wait, then find it there. */
const INSTALL_LOCK = path.join(os.tmpdir(), 'lablink-chromium-install.lock');
const APT_WAITS_FOR_LOCK = ['-o', 'DPkg::Lock::Timeout=300'];
// Checked again under the lock: the worker that waited finds Chromium installed by the first one.
const INSTALL_SCRIPT = `test -x "$1" || { apt-get ${APT_WAITS_FOR_LOCK.join(' ')} update -q && apt-get ${APT_WAITS_FOR_LOCK.join(' ')} install -y -q --no-install-recommends chromium; }`;

/**
 * Installs Debian's Chromium when it is missing (browser tests and screenshots need a real one, and
 * Playwright's own download is not available here). Only what launches Chromium calls it.
 */
async function ensureChromium(): Promise<void> {
  if (existsSync(CHROMIUM_PATH)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`Chromium is missing at ${CHROMIUM_PATH}. Install it (sudo apt-get install -y chromium) or set LABLINK_CHROMIUM_PATH.`);
  }
  process.stderr.write('Installing Chromium (apt-get install chromium), or waiting for another install to finish…\n');
  const child = spawn('flock', [INSTALL_LOCK, 'sh', '-c', INSTALL_SCRIPT, 'sh', CHROMIUM_PATH], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-4000)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0 || !existsSync(CHROMIUM_PATH)) throw new Error(`Installing Chromium failed (exit ${code}):\n${output}`);
}

/** Headless Chromium with the flags this closed network needs; Playwright gives it a fresh profile. */
export async function launchChromium(): Promise<Browser> {
  await ensureChromium();
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
