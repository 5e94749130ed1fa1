import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bootLineLevel } from '../../agent/boot-log';
import { buildAgentBundle } from '../../agent/bundle';
import { plainText } from '../../agent/log-shipper';
import { VmLogView, readVmLogs } from '../../store/vm-logs';
import { freePort } from '../../local/postgres';
import { SimulatedVm, SimulatedVmOptions } from '../../local/simulated-fleet';
import { TEST_FLEET_TOKEN, crdCommand, fakeCode, waitFor } from '../support/fixtures';
import { TestStack, startTestStack, submitForm } from '../support/stack';

// What a real boot script leaves in its log: colours, a progress bar redrawn with \r, an apt error, steps.
const BOOT_LOG = [
  'LABLINK_STEP install-desktop',
  'Reading package lists...',
  '\x1b[1;31mE: Unable to locate package xfce5\x1b[0m',
  'Progress: [ 10%]\rProgress: [ 60%]\rProgress: [100%]',
  '<img src=x onerror=alert(1)>',
  'LABLINK_STEP start-agent',
  '',
].join('\n');

describe('the agent ships its boot log and its own log lines to the real allocator', () => {
  let env: TestStack;
  let dir: string;
  let agentBundle: string;
  const vms: SimulatedVm[] = [];
  const output = new Map<string, string[]>();

  async function startVm(name: string, options: Partial<SimulatedVmOptions> = {}): Promise<SimulatedVm> {
    output.set(name, []);
    const vm = await SimulatedVm.create({
      name,
      allocatorUrl: env.url,
      fleetToken: TEST_FLEET_TOKEN,
      agentBundle,
      onOutput: (_name, line) => output.get(name)!.push(line),
      ...options,
    });
    vms.push(vm);
    vm.start();
    return vm;
  }

  const logsOf = async (name: string): Promise<VmLogView | undefined> => readVmLogs(env.db.sql, name);
  const texts = async (name: string) => ((await logsOf(name))?.lines ?? []).map((line) => line.text);

  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 2 });
    dir = await mkdtemp(path.join(os.tmpdir(), 'lablink-log-shipping-'));
    agentBundle = path.join(dir, 'agent.js');
    await writeFile(agentBundle, buildAgentBundle());
  });
  // Each test's VM gets the assignments it asks for: the VMs of earlier tests leave the pool.
  afterEach(async () => {
    await Promise.all(vms.map((vm) => vm.stop()));
    await env.db.pool.query(`UPDATE vms SET alive_until = now()`);
  });
  afterAll(async () => {
    await Promise.all(vms.map((vm) => vm.dispose()));
    await env?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('marks itself registered once the allocator takes its first batch, ships the boot log as plain text, and follows it', async () => {
    const vm = await startVm('ship-vm-1', { bootLog: BOOT_LOG });
    const marker = await waitFor(
      () => readFile(path.join(vm.stateDir, 'registered'), 'utf8').catch(() => undefined),
      'the registered marker',
    );
    expect(Date.now() - Date.parse(marker.trim())).toBeLessThan(60_000);

    const view = await waitFor(async () => {
      const current = await logsOf('ship-vm-1');
      return current?.step === 'waiting' && current.lines.some((line) => line.source === 'boot') && current;
    }, 'the boot log and the step "waiting"');
    const boot = view.lines.filter((line) => line.source === 'boot').map(({ level, text }) => ({ level, text }));
    expect(boot).toEqual([
      { level: 'info', text: 'LABLINK_STEP install-desktop' },
      { level: 'info', text: 'Reading package lists...' },
      { level: 'error', text: 'E: Unable to locate package xfce5' },
      { level: 'info', text: 'Progress: [100%]' },
      { level: 'info', text: '<img src=x onerror=alert(1)>' },
      { level: 'info', text: 'LABLINK_STEP start-agent' },
    ]);
    expect(view.lines.find((line) => line.source === 'agent')?.text).toMatch(
      /^agent\.started vm=ship-vm-1 allocator=http:\/\/127\.0\.0\.1:\d+$/,
    );

    // A step the boot script announces while the agent runs becomes the VM's step.
    await appendFile(vm.bootLogFile, "LABLINK_STEP reset-desktop\nRemoving the participant's files\n");
    await waitFor(async () => (await logsOf('ship-vm-1'))?.step === 'reset-desktop', 'the appended step');
    await waitFor(async () => (await texts('ship-vm-1')).includes("Removing the participant's files"), 'the appended line');

    // Restarted (or after a reboot) it goes on where it was: the boot log is not sent twice.
    await vm.stop();
    vm.start();
    await waitFor(
      async () => (await texts('ship-vm-1')).filter((text) => text.startsWith('agent.started')).length === 2,
      'the restarted agent',
    );
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await texts('ship-vm-1')).filter((text) => text === 'Reading package lists...')).toHaveLength(1);
  });

  it('never ships the CRD command or the PIN, and ships a failed start-host as an error', async () => {
    await startVm('ship-vm-ok');
    await waitFor(async () => (await logsOf('ship-vm-ok'))?.step === 'waiting', 'ship-vm-ok to wait');
    const code = fakeCode();
    const { pin } = (await (await submitForm(env.url, { email: 'ok@example.com', crd_command: crdCommand(code) })).json()) as {
      pin: string;
    };
    await waitFor(
      async () =>
        (await texts('ship-vm-ok')).some((text) => text.startsWith('agent.start_host_done') && text.includes('outcome=configured')),
      'the outcome line',
    );

    await startVm('ship-vm-bad', { startHostFailure: 'OAuth error: invalid_grant' });
    await waitFor(async () => (await logsOf('ship-vm-bad'))?.step === 'waiting', 'ship-vm-bad to wait');
    const badCode = fakeCode();
    const bad = (await (await submitForm(env.url, { email: 'bad@example.com', crd_command: crdCommand(badCode) })).json()) as {
      pin: string;
    };
    const failure = await waitFor(
      async () => (await logsOf('ship-vm-bad'))?.lines.find((line) => line.text.startsWith('agent.start_host_done')),
      'the failure line',
    );
    expect(failure.level).toBe('error');
    expect(failure.text).toContain('outcome=error reason=start-host exited with code 1: OAuth error: invalid_grant');

    const shipped = [...(await texts('ship-vm-ok')), ...(await texts('ship-vm-bad'))].join('\n');
    for (const secret of [code, pin, badCode, bad.pin, TEST_FLEET_TOKEN, '--code']) expect(shipped).not.toContain(secret);
  });

  it('keeps its lines while the allocator is not up yet, and delivers them with backoff once it is', async () => {
    const port = await freePort();
    const vm = await startVm('ship-vm-early', { allocatorUrl: `http://127.0.0.1:${port}` });
    await waitFor(() => output.get('ship-vm-early')!.some((line) => line.includes('agent.logs_failed')), 'a failed send');
    await expect(readFile(path.join(vm.stateDir, 'registered'), 'utf8')).rejects.toThrow(/ENOENT/);
    const late = await startTestStack({ port, holdSeconds: 2 });
    try {
      await waitFor(() => readFile(path.join(vm.stateDir, 'registered'), 'utf8').catch(() => undefined), 'the registered marker');
      const shipped = await waitFor(async () => {
        const view = await readVmLogs(late.db.sql, 'ship-vm-early');
        return view?.step === 'waiting' && view.lines.some((line) => line.text === 'LABLINK_STEP start-agent') && view.lines;
      }, 'the lines queued during the outage');
      // Among them the agent's own warnings from while the allocator was away.
      expect(shipped.some((line) => line.level === 'warn' && line.text.startsWith('agent.poll_failed'))).toBe(true);
    } finally {
      await vm.stop();
      await late.close();
    }
  });

  it('drops a batch the allocator refuses, backs off instead of retrying at once, and never marks itself registered', async () => {
    const vm = await startVm('ship-vm-refused', { fleetToken: 'not-the-fleet-token-at-all' });
    await waitFor(() => output.get('ship-vm-refused')!.some((line) => line.includes('agent.logs_refused status=403')), 'the refusal');
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const refusals = output.get('ship-vm-refused')!.filter((line) => line.includes('agent.logs_refused')).length;
    expect(refusals).toBeLessThanOrEqual(4);
    expect(vm.running).toBe(true);
    await expect(readFile(path.join(vm.stateDir, 'registered'), 'utf8')).rejects.toThrow(/ENOENT/);
  });
});

describe('a boot log line as shipped', () => {
  it.each([
    ['E: Unable to locate package xfce5', 'error'],
    ['Errors were encountered while processing:', 'error'],
    ['curl: (6) Could not resolve host: dl.google.com', 'error'],
    ['/var/lib/cloud/instance/scripts/part-001: line 9: hostnamectl: command not found', 'error'],
    ['Failed to start lablink-agent.service', 'error'],
    ['W: Failed to fetch http://archive.ubuntu.com/ubuntu/dists/noble/InRelease', 'warn'],
    ['dpkg: warning: files list file for package x missing', 'warn'],
    ['Setting up libgpg-error0:amd64 (1.47-3build2) ...', 'info'],
    ['Get:1 http://archive.ubuntu.com/ubuntu noble InRelease [256 kB]', 'info'],
  ])('%s is %s', (text, level) => {
    expect(bootLineLevel(text)).toBe(level);
  });

  it('is what a terminal shows, without escapes or control characters, cut to the allowed length', () => {
    expect(plainText('\x1b]0;title\x07\x1b(B\x1b[32mok\x1b[0m\tdone\x00\x7f')).toBe('ok\tdone');
    expect(plainText('Progress: [ 10%]\rProgress: [100%]\r')).toBe('Progress: [100%]');
    const long = plainText('x'.repeat(5000));
    expect(long).toHaveLength(2000);
    expect(long.endsWith('…')).toBe(true);
  });
});
