#!/usr/bin/env node
// Stand-in for CRD's start-host in local mode and tests: records argv and stdin instead
// of calling Google, refuses a code it has already seen and the go / no-go probe's code
// (as Google does: it never issued either), and on success
// writes a host registration file where the real one does. Its settings are in
// $HOME/fake-crd.json (record file, failure message, delay), written by the simulated VM.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const home = process.env.HOME ?? '.';
const settingsFile = path.join(home, 'fake-crd.json');
const settings = existsSync(settingsFile) ? JSON.parse(readFileSync(settingsFile, 'utf8')) : {};
const recordFile = settings.record;
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const stdin = Buffer.concat(chunks).toString('utf8');
const argv = process.argv.slice(2);
const code = argv.find((arg) => arg.startsWith('--code='));

if (recordFile) {
  const seen = existsSync(recordFile)
    ? readFileSync(recordFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line))
    : [];
  if (seen.some((record) => record.argv.includes(code))) {
    console.error('OAuth error: the authorization code has already been used.');
    process.exit(1);
  }
  appendFileSync(recordFile, `${JSON.stringify({ argv, stdin, display: process.env.DISPLAY ?? null })}\n`);
}
await sleep(Number(settings.delayMs ?? 0));
// PROBE_CODE_MARKER and OAUTH_REFUSAL in core/go-no-go.ts: Google refuses the code it never issued.
if (code?.includes('LabLinkGoNoGoProbe')) {
  console.error("Couldn't start host: OAuth error.");
  process.exit(1);
}
if (settings.failure) {
  console.error(settings.failure);
  process.exit(1);
}
const configDir = path.join(home, '.config', 'chrome-remote-desktop');
mkdirSync(configDir, { recursive: true });
writeFileSync(
  path.join(configDir, 'host#simulated.json'),
  JSON.stringify({ host_name: argv.find((arg) => arg.startsWith('--name='))?.slice(7) }),
);
console.log('Host registered (simulated).');
