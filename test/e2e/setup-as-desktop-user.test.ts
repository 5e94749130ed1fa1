import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readAgentConfig } from '../../agent/agent-config';
import { AllocatorClient } from '../../agent/allocator-client';
import { LogShipper } from '../../agent/log-shipper';
import { SetupRunner } from '../../agent/setup';
import { SETUP_RESULT_FILE } from '../../contract/setup-plan';
import { silentLogger } from '../../core/log';
import { readVmLogs } from '../../store/vm-logs';
import { TEST_FLEET_TOKEN, waitFor } from '../support/fixtures';
import { TestStack, startTestStack } from '../support/stack';

/**
 * A stand-in for runuser: records its argv (one JSON line per call), then runs what follows `--`
 * with HOME set to the desktop user's home, as the real runuser does.
 */
const STAND_IN_RUNUSER = `#!/usr/bin/env node
const { appendFileSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const args = process.argv.slice(2);
appendFileSync(path.join(__dirname, 'runuser-calls'), JSON.stringify(args) + '\\n');
if (args[0] !== '-u' || args[2] !== '--') process.exit(90);
const ran = spawnSync(args[3], args.slice(4), { stdio: 'inherit', env: { ...process.env, HOME: path.join(__dirname, 'home') } });
process.exit(ran.status ?? 1);
`;

describe('the workshop setup runs its repository and check as the desktop user, its script as root (a stand-in runuser records argv)', () => {
  let env: TestStack;
  let dir: string;
  beforeAll(async () => {
    env = await startTestStack();
    dir = await mkdtemp(path.join(os.tmpdir(), 'lablink-setup-user-'));
  });
  afterAll(async () => {
    await env?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('switches to the desktop user for the clone and the check, in its home, and never for the script', async () => {
    const runuser = path.join(dir, 'runuser');
    await writeFile(runuser, STAND_IN_RUNUSER);
    await chmod(runuser, 0o755);
    await mkdir(path.join(dir, 'home'));
    const repository = path.join(dir, 'workshop.git');
    execFileSync('git', ['init', '-q', '--bare', repository]);
    const script = path.join(dir, 'setup.sh');
    await writeFile(script, 'echo "script as $(id -un)"\n');
    const check = 'test -d "$HOME/workshop/.git" && echo "check in $(pwd)"';
    const config = readAgentConfig({
      LABLINK_ALLOCATOR_URL: env.url,
      LABLINK_FLEET_TOKEN: TEST_FLEET_TOKEN,
      LABLINK_VM_NAME: 'user-vm-1',
      LABLINK_STATE_DIR: path.join(dir, 'state'),
    });
    const shipper = new LogShipper(config, new AllocatorClient(config), silentLogger);
    const setup = new SetupRunner(
      { repository, script, check, workDir: path.join(dir, 'work') },
      { vmName: 'user-vm-1', stateDir: path.join(dir, 'state'), desktopUser: 'participant', retrySeconds: 0, runuser },
      shipper,
      silentLogger,
    );
    const stop = new AbortController();
    const shipping = shipper.run(stop.signal);
    const running = setup.run(stop.signal);
    try {
      const result = await waitFor(
        () => readFile(path.join(dir, 'state', SETUP_RESULT_FILE), 'utf8').catch(() => undefined),
        'the setup to end',
      );
      expect(JSON.parse(result)).toMatchObject({ ok: true });
      const calls = (await readFile(path.join(dir, 'runuser-calls'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as string[]);
      const inHome = ['-u', 'participant', '--', 'sh', '-c', 'cd && exec "$@"', 'sh'];
      expect(calls).toEqual([
        [...inHome, 'sh', '-c', expect.stringContaining('git clone'), 'sh', repository, 'workshop', ''],
        [...inHome, 'bash', '-lc', check],
      ]);
      const lines = await waitFor(async () => {
        const texts = ((await readVmLogs(env.db.sql, 'user-vm-1'))?.lines ?? []).map((line) => line.text);
        return texts.some((text) => text.startsWith('check in')) && texts;
      }, "the check's output in the VM's log");
      expect(lines).toContain(`check in ${path.join(dir, 'home')}`);
      expect(lines).toContain(`script as ${os.userInfo().username}`);
    } finally {
      stop.abort();
      await Promise.all([shipping, running]);
    }
  });
});
