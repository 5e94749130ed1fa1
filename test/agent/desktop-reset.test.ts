import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readAgentConfig } from '../../agent/agent-config';
import { resetDesktop } from '../../agent/desktop-reset';
import { useAgentHarness } from '../support/agent-harness';
import { TEST_ADMIN_SECRET, TEST_FLEET_TOKEN, crdCommand, fakeCode, waitFor } from '../support/fixtures';
import { freeCount, pollAsVm, submitForm } from '../support/stack';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;

async function jsonLines(file: string): Promise<{ argv: string[] }[]> {
  if (!existsSync(file)) return [];
  return (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

describe('one VM serves one participant after another (real agent process, stand-in start-host and reset commands)', () => {
  const harness = useAgentHarness();

  async function vmRow(name: string) {
    return (await harness.env.db.pool.query(`SELECT state, email, failed_at, failure, step FROM vms WHERE hostname = $1`, [name])).rows[0];
  }

  async function request(email: string, code: string) {
    const response = await submitForm(harness.env.url, { email, crd_command: crdCommand(code) });
    expect(response.status).toBe(200);
    return (await response.json()) as { hostname: string; status: string };
  }

  it('after release, wipes the CRD host and the home, frees the VM, and runs the next participant’s code', async () => {
    const vm = await harness.startVm('reuse-1');
    const firstCode = fakeCode();
    const first = await request('first@example.com', firstCode);
    expect(first.hostname).toBe('reuse-1');
    await waitFor(async () => (await vmRow('reuse-1')).state === 'configured', 'the first participant’s VM to be configured');
    const hostFile = path.join(vm.homeDir, '.config', 'chrome-remote-desktop', 'host#simulated.json');
    expect(existsSync(hostFile)).toBe(true);
    // What the participant left on the desktop.
    await mkdir(path.join(vm.homeDir, 'Documents'));
    await writeFile(path.join(vm.homeDir, 'Documents', 'notes.txt'), 'first participant’s notes');
    await writeFile(path.join(vm.tempDir, 'download.part'), 'half a download');

    const release = await fetch(`${harness.env.url}/api/vms/reuse-1/release`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(await release.json()).toEqual({ hostname: 'reuse-1', state: 'resetting', previousEmail: 'first@example.com' });

    await waitFor(async () => (await vmRow('reuse-1')).state === 'waiting', 'the agent to report the reset done');
    expect(await vmRow('reuse-1')).toMatchObject({ email: null, failed_at: null, failure: null });
    expect(existsSync(hostFile)).toBe(false);
    expect(existsSync(path.join(vm.homeDir, 'Documents'))).toBe(false);
    expect(existsSync(path.join(vm.tempDir, 'download.part'))).toBe(false);
    // The home was made again from the skeleton.
    expect(await readFile(path.join(vm.homeDir, '.profile'), 'utf8')).toBe('# a new desktop user\n');
    expect((await jsonLines(vm.resetCommandsFile)).map((call) => call.argv.join(' '))).toEqual([
      'systemctl stop chrome-remote-desktop@simulated',
      'pkill -KILL -u simulated',
    ]);
    // The reset's steps went through the VM's one progress and log channel.
    const logged = await waitFor(async () => {
      const { rows } = await harness.env.db.pool.query(
        `SELECT text FROM vm_log_lines WHERE hostname = 'reuse-1' AND text LIKE '%agent.reset%'`,
      );
      const text = rows.map((row) => row.text).join('\n');
      return text.includes('agent.reset_done') && text;
    }, 'the reset’s log lines to arrive');
    for (const step of ['reset-stop-crd', 'reset-end-session', 'reset-remove-host', 'reset-remove-files', 'reset-recreate-home'])
      expect(logged).toContain(step);
    expect(logged).toContain('agent.reset_done');

    // The previous participant's link says what happened.
    const old = await (await fetch(`${harness.env.url}${first.status}`)).json();
    expect(old).toMatchObject({ hostname: 'reuse-1', progress: 'released' });

    await waitFor(async () => (await freeCount(harness.env.url)) === 1, 'the VM to be free again');
    const secondCode = fakeCode();
    expect((await request('second@example.com', secondCode)).hostname).toBe('reuse-1');
    await waitFor(async () => (await vmRow('reuse-1')).state === 'configured', 'the second participant’s VM to be configured');
    const calls = await jsonLines(vm.recordFile);
    expect(calls).toHaveLength(2);
    expect(calls[1].argv).toContain(`--code=${secondCode}`);
    expect(calls[1].argv).not.toContain(`--code=${firstCode}`);
    expect(existsSync(hostFile)).toBe(true);
  });

  it('runs the workshop setup again in the new home before the VM is free again', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lablink-reset-setup-'));
    try {
      const script = path.join(dir, 'setup.sh');
      // Slow on purpose: a VM reported free before its setup is back would be seen without the file.
      await writeFile(script, 'set -e\nsleep 1\necho "tutorial for $(date +%s%N)" > "$HOME/tutorial.txt"\necho "tutorial installed"\n');
      const vm = await harness.startVm('reuse-setup', { setup: { script } });
      const tutorial = path.join(vm.homeDir, 'tutorial.txt');
      const first = await readFile(tutorial, 'utf8');
      await request('setup-first@example.com', fakeCode());
      await waitFor(async () => (await vmRow('reuse-setup')).state === 'configured', 'the VM to be configured');

      await fetch(`${harness.env.url}/api/vms/reuse-setup/release`, { method: 'POST', headers: { authorization: ADMIN } });
      await waitFor(async () => (await vmRow('reuse-setup')).state === 'waiting', 'the reset to be done');
      const again = await readFile(tutorial, 'utf8');
      expect(again).toMatch(/^tutorial for \d+\n$/);
      expect(again).not.toBe(first);
      expect(await vmRow('reuse-setup')).toMatchObject({ failed_at: null });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('marks a VM whose reset fails as failed with the reason, and never hands it out', async () => {
    await harness.startVm('reuse-broken', { env: { LABLINK_RESET_STOP_CRD: '/bin/false' } });
    await request('broken@example.com', fakeCode());
    await waitFor(async () => (await vmRow('reuse-broken')).state === 'configured', 'the VM to be configured');
    const release = await fetch(`${harness.env.url}/api/vms/reuse-broken/release`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(release.status).toBe(200);
    const row = await waitFor(async () => {
      const current = await vmRow('reuse-broken');
      return current.failed_at !== null && current;
    }, 'the reset to fail');
    expect(row.failure).toBe('Reset failed: reset-stop-crd: /bin/false exited with code 1');
    expect(await freeCount(harness.env.url)).toBe(0);
    const refused = await submitForm(harness.env.url, { email: 'next@example.com', crd_command: crdCommand() });
    expect(refused.status).toBe(503);
  });

  it('answers a VM being reset with 202 {"status":"reset"}, never a 200, and takes the reset report only then', async () => {
    await harness.env.db.pool.query(`INSERT INTO vms (hostname, state, alive_until) VALUES ('reuse-wire', 'resetting', now())`);
    const poll = await pollAsVm(harness.env.url, 'reuse-wire');
    expect(poll.status).toBe(202);
    expect(await poll.json()).toEqual({ status: 'reset' });
    const report = (outcome: string) =>
      fetch(`${harness.env.url}/vm_reset`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_FLEET_TOKEN}` },
        body: JSON.stringify({ hostname: 'reuse-wire', outcome }),
      });
    expect((await report('finished')).status).toBe(400);
    expect((await vmRow('reuse-wire')).state).toBe('resetting');
    expect(await (await report('done')).json()).toEqual({ state: 'waiting', failed: false });
    expect((await report('done')).status).toBe(409);
  });
});

describe('the reset’s configuration and safety checks', () => {
  const base = { LABLINK_ALLOCATOR_URL: 'http://127.0.0.1:1', LABLINK_FLEET_TOKEN: TEST_FLEET_TOKEN, LABLINK_VM_NAME: 'vm-1' };

  it('on EC2 gives each participant a fresh account of the desktop user, stopping its CRD service first, by default', () => {
    expect(readAgentConfig({ ...base, LABLINK_DESKTOP_USER: 'lablink' }).reset).toMatchObject({
      kind: 'account',
      stopCrd: ['systemctl', 'stop', 'chrome-remote-desktop@lablink'],
      tempDirs: ['/tmp', '/var/tmp', '/dev/shm'],
      skelDir: '/etc/skel',
      numbering: { uidBase: 700_000_000, subordinateBase: 800_000_000 },
    });
    expect(() => readAgentConfig({ ...base, LABLINK_DESKTOP_USER: 'lablink', LABLINK_DESKTOP_HOME: '/home/x' })).toThrow(
      /LABLINK_DESKTOP_HOME is for local mode only/,
    );
  });

  it('never resets the agent’s own home by default, and wants stand-in commands with a home of its own', () => {
    expect(readAgentConfig(base).reset).toBeUndefined();
    expect(() => readAgentConfig({ ...base, LABLINK_DESKTOP_HOME: '/tmp/desktop' })).toThrow(
      /LABLINK_RESET_STOP_CRD must be set .* LABLINK_RESET_END_SESSION must be set/,
    );
  });

  const homeReset = (home: string, stopCrd = ['true']) => ({
    kind: 'home' as const,
    stopCrd,
    endSession: ['true'],
    home,
    skelDir: '/etc/skel',
    tempDirs: [],
    timeouts: { commandMs: 300, endProcessesMs: 1000, sweepMs: 1000 },
  });

  it.each([
    ['a top-level folder', '/home', "not a user's home folder"],
    ['a home holding the agent’s state', '/var/lib', "the agent's state folder is inside it"],
  ])('refuses to delete %s', async (_case, home, reason) => {
    const announced: string[] = [];
    const result = await resetDesktop(
      { reset: homeReset(home), crdConfigDir: '/nonexistent', stateDir: '/var/lib/lablink-agent' },
      (step) => announced.push(step),
    );
    expect(result).toEqual({ ok: false, message: `reset-recreate-home: Refusing to recreate ${home}: ${reason}.` });
    expect(announced).toEqual(['reset-stop-crd', 'reset-end-session', 'reset-remove-host', 'reset-remove-files', 'reset-recreate-home']);
  });

  it.each([
    ['cannot start', ['/nonexistent/systemctl', 'stop'], 'reset-stop-crd: /nonexistent/systemctl stop failed (ENOENT)'],
    ['runs past its time', ['sleep', '5'], 'reset-stop-crd: sleep 5 timed out after 0.3 s'],
  ])('fails a reset whose command %s, naming the step, and leaves the home alone', async (_case, stopCrd, message) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lablink-reset-fail-'));
    try {
      const home = path.join(dir, 'home');
      await mkdir(home);
      await writeFile(path.join(home, 'work.txt'), 'kept');
      const result = await resetDesktop(
        { reset: homeReset(home, stopCrd), crdConfigDir: dir, stateDir: path.join(dir, 'state') },
        () => undefined,
      );
      expect(result).toEqual({ ok: false, message });
      expect(await readFile(path.join(home, 'work.txt'), 'utf8')).toBe('kept');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
