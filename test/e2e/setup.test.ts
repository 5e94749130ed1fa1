import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildAgentBundle } from '../../agent/bundle';
import { SetupResult } from '../../agent/setup';
import type { SetupPlan } from '../../contract/setup-plan';
import { SETUP_RESULT_FILE } from '../../contract/setup-plan';
import { KEPT_LOG_LINES_PER_VM } from '../../contract/wire';
import { SimulatedVm } from '../../local/simulated-fleet';
import { resetVms } from '../../store/reset';
import { requestSetupRerun } from '../../store/setup-rerun';
import { readVmLogs } from '../../store/vm-logs';
import { VmSummary, listVms } from '../../store/vms';
import { TEST_FLEET_TOKEN, crdCommand, waitFor } from '../support/fixtures';
import { TestStack, startTestStack, submitForm } from '../support/stack';

describe('the workshop setup runs in the real agent before the VM joins the real allocator’s pool', () => {
  let env: TestStack;
  let dir: string;
  let agentBundle: string;
  const vms: SimulatedVm[] = [];

  async function script(name: string, body: string): Promise<string> {
    const file = path.join(dir, `${name}.sh`);
    await writeFile(file, `set -e\n${body}\n`);
    await chmod(file, 0o755);
    return file;
  }

  async function startVm(name: string, setup: Omit<SetupPlan, 'workDir'>, extraEnv: Record<string, string> = {}): Promise<SimulatedVm> {
    const vm = await SimulatedVm.create({
      name,
      allocatorUrl: env.url,
      fleetToken: TEST_FLEET_TOKEN,
      agentBundle,
      setup,
      // Fast retries and heartbeats, so a test takes seconds.
      env: { LABLINK_SETUP_RETRY_SECONDS: '0.2', LABLINK_HEARTBEAT_SECONDS: '0.5', ...extraEnv },
    });
    vms.push(vm);
    vm.start();
    return vm;
  }

  const vmRow = async (name: string): Promise<VmSummary | undefined> => (await listVms(env.db.sql)).find((vm) => vm.hostname === name);
  const isFree = async (name: string) => {
    const vm = await vmRow(name);
    return vm?.state === 'waiting' && vm.polling && !vm.failed_at && vm;
  };
  const failedRow = async (name: string) => {
    const vm = await vmRow(name);
    return vm?.failed_at ? vm : undefined;
  };
  const setupLines = async (name: string) => ((await readVmLogs(env.db.sql, name))?.lines ?? []).filter((line) => line.source === 'setup');
  const result = async (vm: SimulatedVm) => JSON.parse(await readFile(path.join(vm.stateDir, SETUP_RESULT_FILE), 'utf8')) as SetupResult;

  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 1, aliveGraceSeconds: 1 });
    dir = await mkdtemp(path.join(os.tmpdir(), 'lablink-setup-test-'));
    agentBundle = path.join(dir, 'agent.js');
    await writeFile(agentBundle, buildAgentBundle());
  });
  afterAll(async () => {
    await Promise.all(vms.map((vm) => vm.dispose()));
    await env?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a passing script in the VM’s own folder, ships its output without the agent’s secrets, and only then joins the pool', async () => {
    const passing = await script('passing', 'echo "installing the tutorial in $(pwd)"\nenv\ntouch tutorial-installed\necho done');
    const vm = await startVm('setup-ok', { script: passing, check: 'test -f tutorial-installed' });
    await waitFor(() => isFree('setup-ok'), 'the VM to be free after its setup', 30_000);

    const texts = await waitFor(async () => {
      const shipped = (await setupLines('setup-ok')).map((line) => line.text);
      return shipped.includes('done') && shipped;
    }, 'the setup output');
    expect(texts).toContain(`installing the tutorial in ${path.join(vm.stateDir, '..', 'setup')}`);
    expect(texts).toContain('done');
    expect(texts).toContain('LABLINK_VM_NAME=setup-ok');
    // The script's environment holds none of the agent's settings: the fleet token is nowhere.
    const everything = JSON.stringify(await readVmLogs(env.db.sql, 'setup-ok'));
    expect(everything).not.toContain(TEST_FLEET_TOKEN);
    expect(everything).not.toContain('LABLINK_ALLOCATOR_URL');
    expect(await result(vm)).toMatchObject({ ok: true });

    // A participant gets it like any VM.
    const response = await submitForm(env.url, { email: 'setup-ok@example.org', crd_command: crdCommand() });
    expect(((await response.json()) as { hostname: string }).hostname).toBe('setup-ok');
  });

  it('runs the script once: an agent restarted after a passing setup joins the pool without running it again', async () => {
    const counting = await script('counting', 'echo x >> runs\necho "run $(wc -l < runs)"');
    const vm = await startVm('setup-once', { script: counting });
    await waitFor(() => isFree('setup-once'), 'the VM to be free', 30_000);
    await vm.stop();
    await env.db.pool.query(`UPDATE vms SET alive_until = now() WHERE hostname = 'setup-once'`);
    vm.start();
    await waitFor(() => isFree('setup-once'), 'the restarted VM to be free again', 30_000);
    expect((await readFile(path.join(vm.stateDir, '..', 'setup', 'runs'), 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('tries a failing script again and joins the pool when a later try passes', async () => {
    const flaky = await script(
      'flaky',
      'echo x >> tries\nif [ "$(wc -l < tries)" -lt 2 ]; then echo "error: mirror unreachable" >&2; exit 3; fi\necho "installed on try 2"',
    );
    await startVm('setup-flaky', { script: flaky });
    await waitFor(() => isFree('setup-flaky'), 'the VM to be free after its second try', 30_000);
    const texts = await waitFor(async () => {
      const shipped = (await setupLines('setup-flaky')).map((line) => line.text);
      return shipped.includes('installed on try 2') && shipped;
    }, 'the output of both tries');
    expect(texts).toEqual([
      'error: mirror unreachable',
      expect.stringMatching(/^Setup script attempt 1 of 3 exited with status 3; trying again in/),
      'installed on try 2',
    ]);
    expect((await setupLines('setup-flaky'))[0].level).toBe('error');
  });

  it('marks a VM whose script always fails as failed with the step and the last lines, keeps it out of the pool, and a re-run after a fix brings it back', async () => {
    const fixable = path.join(dir, 'fixable.sh');
    await writeFile(fixable, 'echo "Collecting sleap"\necho "ERROR: No matching distribution found for sleap==9.9"\nexit 7\n');
    const vm = await startVm('setup-broken', { script: fixable });
    const failed = await waitFor(() => failedRow('setup-broken'), 'the VM to be marked failed', 30_000);
    expect(failed.failure).toBe(
      'Setup failed at setup-script: exited with status 7 (3 attempts). Last lines: Collecting sleap | ERROR: No matching distribution found for sleap==9.9',
    );
    expect(failed.step).toBe('setup-failed');
    expect(failed.polling).toBe(false);
    expect(await result(vm)).toMatchObject({ ok: false, step: 'setup-script' });
    await waitFor(
      async () => (await setupLines('setup-broken')).filter((line) => line.text === 'Collecting sleap').length === 3,
      'the output of all three tries',
    );
    const refused = await submitForm(env.url, { email: 'nobody-gets-broken@example.org', crd_command: crdCommand() });
    if (refused.ok) expect(((await refused.json()) as { hostname: string }).hostname).not.toBe('setup-broken');

    await writeFile(fixable, 'echo "fixed"\n');
    expect(await requestSetupRerun(env.db.sql, 'setup-broken', false)).toEqual({ kind: 'requested' });
    const back = await waitFor(() => isFree('setup-broken'), 'the re-run to pass and the VM to be free', 30_000);
    expect(back.failure).toBeNull();
    expect(back.setup_rerun_requested_at).toBeNull();
    expect(await result(vm)).toMatchObject({ ok: true });
  });

  it('marks a VM whose check fails as failed at the check, after a passing script', async () => {
    await startVm('setup-check-fails', {
      script: await script('quiet', 'echo "script ok"'),
      check: 'echo "No module named sleap" >&2; exit 1',
    });
    const failed = await waitFor(() => failedRow('setup-check-fails'), 'the check to fail', 30_000);
    expect(failed.failure).toBe('Setup failed at setup-check: exited with status 1. Last lines: No module named sleap');
    expect(failed.polling).toBe(false);
  });

  it('pulls the container image (Podman is a stand-in here) and puts a launcher on the desktop; a failed pull fails the VM at that step', async () => {
    // The stand-in records its argv; it refuses one image as a registry would.
    const bin = path.join(dir, 'podman-bin');
    const calls = path.join(dir, 'podman-calls');
    await mkdir(bin);
    await writeFile(
      path.join(bin, 'podman'),
      `#!/bin/sh\necho "$*" >> '${calls}'\nif [ "$2" = registry.example.org/missing:1 ]; then echo 'Error: manifest unknown' >&2; exit 125; fi\necho 'Writing manifest to image destination'\n`,
    );
    await chmod(path.join(bin, 'podman'), 0o755);
    const withPodman = { PATH: `${bin}:${process.env.PATH}` };

    const vm = await startVm('setup-container', { containerImage: 'docker.io/library/python:3.12' }, withPodman);
    await waitFor(() => isFree('setup-container'), 'the VM to be free after the pull', 30_000);
    expect(await readFile(calls, 'utf8')).toBe('pull docker.io/library/python:3.12\n');
    const launcher = await readFile(path.join(vm.homeDir, 'Desktop', 'workshop-container.desktop'), 'utf8');
    expect(launcher).toContain('Exec=xfce4-terminal --hold --command="podman run --rm -it docker.io/library/python:3.12"');

    await startVm('setup-container-missing', { containerImage: 'registry.example.org/missing:1' }, withPodman);
    const failed = await waitFor(() => failedRow('setup-container-missing'), 'the pull to fail', 30_000);
    expect(failed.failure).toBe('Setup failed at setup-container: exited with status 125. Last lines: Error: manifest unknown');
  });

  it('clones the repository at the given ref before the script, which finds it in its folder', async () => {
    const origin = path.join(dir, 'tutorial.git');
    const git = (...args: string[]) => execFileSync('git', ['-C', origin, '-c', 'user.name=t', '-c', 'user.email=t@example.org', ...args]);
    execFileSync('git', ['init', '-q', origin]);
    await writeFile(path.join(origin, 'lesson.txt'), 'lesson 1\n');
    git('add', '.');
    git('commit', '-qm', 'one');
    git('tag', 'v1');
    await writeFile(path.join(origin, 'lesson.txt'), 'lesson 2\n');
    git('commit', '-qam', 'two');
    await startVm('setup-repo', { repository: origin, repositoryRef: 'v1', script: await script('uses-repo', 'cat tutorial/lesson.txt') });
    await waitFor(() => isFree('setup-repo'), 'the VM to be free', 30_000);
    const texts = await waitFor(async () => {
      const shipped = (await setupLines('setup-repo')).map((line) => line.text);
      return shipped.includes('lesson 1') && shipped;
    }, 'the script to read the tag’s lesson');
    expect(texts).not.toContain('lesson 2');
  });

  it('after a reset recreated the home, runs the setup and its check again before the VM is free: one whose setup now fails stays out, named', async () => {
    // The first VM's script fails once its home was recreated; the second one's passes again.
    const onlyOnce = await script(
      'only-once',
      'if [ -e "$HOME/../ran-once" ]; then echo "error: licence already used" >&2; exit 4; fi\ntouch "$HOME/../ran-once" "$HOME/workshop-data"',
    );
    const every = await script('every-time', 'touch "$HOME/workshop-data"');
    await startVm('setup-reset-fails', { script: onlyOnce, check: 'test -f "$HOME/workshop-data"' });
    await startVm('setup-reset-ok', { script: every, check: 'test -f "$HOME/workshop-data" && echo "check passed"' });
    for (const name of ['setup-reset-fails', 'setup-reset-ok']) await waitFor(() => isFree(name), `${name} to be free`, 30_000);

    for (const name of ['setup-reset-fails', 'setup-reset-ok'])
      expect(await resetVms(env.db.sql, { scope: 'one', hostname: name })).toHaveLength(1);
    const failed = await waitFor(() => failedRow('setup-reset-fails'), 'the setup after the reset to fail', 30_000);
    expect(failed.failure).toBe('Setup failed at setup-script: exited with status 4 (3 attempts). Last lines: error: licence already used');
    expect(failed.state).toBe('resetting');
    // A failed re-run's step says so: the dashboard shows it failed, not ready.
    expect(failed.step).toBe('setup-failed');
    await waitFor(
      async () => (await vmRow('setup-reset-ok'))?.state === 'waiting' && isFree('setup-reset-ok'),
      'the other VM to be free again after its reset',
      30_000,
    );
    await waitFor(
      async () => (await setupLines('setup-reset-ok')).filter((line) => line.text === 'check passed').length === 2,
      'the check to have passed at boot and after the reset',
    );
  });

  it('keeps only the first lines (the boot) and the newest of a very talkative script', async () => {
    await startVm('setup-talkative', { script: await script('talkative', 'for i in $(seq 1 3000); do echo "line $i"; done') });
    await waitFor(() => isFree('setup-talkative'), 'the VM to be free', 40_000);
    const view = await waitFor(async () => {
      const current = await readVmLogs(env.db.sql, 'setup-talkative');
      return current?.lines.some((line) => line.text === 'line 3000') && current;
    }, 'the last line to arrive');
    expect(view.lines.length).toBeLessThanOrEqual(KEPT_LOG_LINES_PER_VM);
    expect(view.lines.some((line) => line.text === 'line 1500')).toBe(false);
  });
});
