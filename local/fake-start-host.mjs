#!/usr/bin/env node
// Stand-in for CRD's start-host in local mode and tests: records argv and stdin instead
// of calling Google, refuses a code it has already seen (as Google does), and on success
// writes a host registration file where the real one does.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const recordFile = process.env.LABLINK_FAKE_CRD_RECORD;
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const stdin = Buffer.concat(chunks).toString('utf8');
const argv = process.argv.slice(2);
const code = argv.find((arg) => arg.startsWith('--code='));

if (recordFile) {
  const seen = existsSync(recordFile) ? readFileSync(recordFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line)) : [];
  if (seen.some((record) => record.argv.includes(code))) {
    console.error('OAuth error: the authorization code has already been used.');
    process.exit(1);
  }
  appendFileSync(recordFile, `${JSON.stringify({ argv, stdin, display: process.env.DISPLAY ?? null })}\n`);
}
// Google takes a moment; tests stretch it to stop the agent halfway.
await sleep(Number(process.env.LABLINK_FAKE_CRD_DELAY_MS ?? 0));
if (process.env.LABLINK_FAKE_CRD_FAIL) {
  console.error(process.env.LABLINK_FAKE_CRD_FAIL);
  process.exit(1);
}
const configDir = path.join(process.env.HOME ?? '.', '.config', 'chrome-remote-desktop');
mkdirSync(configDir, { recursive: true });
writeFileSync(path.join(configDir, 'host#simulated.json'), JSON.stringify({ host_name: argv.find((arg) => arg.startsWith('--name='))?.slice(7) }));
console.log('Host registered (simulated).');
