import { readVmLogs } from '../../store/vm-logs';
import { VmLogLine } from '../../contract/wire';
import { TestStack, freeCount, pollAsVm, sendLogsAsVm, startTestStack } from '../support/stack';

const bootLine = (text: string): VmLogLine => ({ at: new Date().toISOString(), level: 'info', source: 'boot', text });

describe('POST /vm_logs on the real allocator', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 1 });
  });
  afterAll(async () => env?.close());

  it('takes boot lines before the first poll: the VM is listed with its step but not free until it polls', async () => {
    const response = await sendLogsAsVm(env.url, {
      hostname: 'boot-vm-1',
      step: 'install-crd',
      lines: [bootLine('Setting up chrome-remote-desktop ...')],
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ accepted: 1 });
    expect(await readVmLogs(env.db.sql, 'boot-vm-1')).toMatchObject({
      step: 'install-crd',
      lines: [{ text: 'Setting up chrome-remote-desktop ...', source: 'boot' }],
    });
    expect(await freeCount(env.url)).toBe(0);
    expect((await pollAsVm(env.url, 'boot-vm-1')).status).toBe(204);
    expect(await freeCount(env.url)).toBe(1);
  });

  it("stores C1 controls, line separators and bidi overrides escaped as the allocator's own logs do, so the log page and logs.txt cannot be spoofed; a tab stays", async () => {
    const lines = [
      bootLine('csi \u009b2J'),
      bootLine('ok\u2028forged line'),
      bootLine('invoice\u202efdp.exe \u2066x\u2069'),
      bootLine('col1\tcol2'),
    ];
    expect((await sendLogsAsVm(env.url, { hostname: 'spoof-vm', lines })).status).toBe(200);
    const texts = (await readVmLogs(env.db.sql, 'spoof-vm'))!.lines.map((line) => line.text);
    expect(texts).toEqual(['csi \\u009b2J', 'ok\\u2028forged line', 'invoice\\u202efdp.exe \\u2066x\\u2069', 'col1\tcol2']);
  });

  it('keeps 500 lines of a VM when 600 come in six requests: its first 100 (the boot) and the newest', async () => {
    for (let request = 0; request < 6; request += 1) {
      const lines = Array.from({ length: 100 }, (_, index) => bootLine(`boot line ${request * 100 + index + 1}`));
      expect((await sendLogsAsVm(env.url, { hostname: 'chatty-vm', lines })).status).toBe(200);
    }
    const texts = (await readVmLogs(env.db.sql, 'chatty-vm'))!.lines.map((line) => line.text);
    expect(texts).toHaveLength(500);
    expect(texts.slice(99, 101)).toEqual(['boot line 100', 'boot line 201']);
    expect(texts[0]).toBe('boot line 1');
    expect(texts.at(-1)).toBe('boot line 600');
    expect(texts).not.toContain('boot line 101');
    expect(texts).not.toContain('boot line 200');
  });

  it('takes a setup failure out of the pool and a later null puts it back, but refuses a reason that is not a setup failure and changes nothing', async () => {
    expect((await pollAsVm(env.url, 'setup-vm')).status).toBe(204);
    const before = await freeCount(env.url);
    const bad = await sendLogsAsVm(env.url, {
      hostname: 'setup-vm',
      lines: [bootLine('kept?')],
      setupFailure: 'The agent stopped reporting',
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: expect.stringContaining('"setupFailure" must be null or one line starting "Setup failed"') });
    expect((await readVmLogs(env.db.sql, 'setup-vm'))!.lines).toEqual([]);
    expect(await freeCount(env.url)).toBe(before);

    const failed = await sendLogsAsVm(env.url, {
      hostname: 'setup-vm',
      step: 'setup-failed',
      lines: [],
      setupFailure: 'Setup failed at setup-script: exited with status 1.',
    });
    expect(failed.status).toBe(200);
    expect(await freeCount(env.url)).toBe(before - 1);
    const { rows } = await env.db.pool.query(`SELECT failure FROM vms WHERE hostname = 'setup-vm'`);
    expect(rows).toEqual([{ failure: 'Setup failed at setup-script: exited with status 1.' }]);

    expect((await sendLogsAsVm(env.url, { hostname: 'setup-vm', step: 'waiting', lines: [], setupFailure: null })).status).toBe(200);
    expect(await freeCount(env.url)).toBe(before);
  });

  it('never clears a failure the fleet doctor found when a setup passes', async () => {
    expect((await pollAsVm(env.url, 'doctor-failed-vm')).status).toBe(204);
    await env.db.pool.query(
      `UPDATE vms SET failed_at = now(), failure = 'The agent stopped reporting' WHERE hostname = 'doctor-failed-vm'`,
    );
    expect((await sendLogsAsVm(env.url, { hostname: 'doctor-failed-vm', lines: [], setupFailure: null })).status).toBe(200);
    const { rows } = await env.db.pool.query(
      `SELECT failure, failed_at IS NOT NULL AS failed FROM vms WHERE hostname = 'doctor-failed-vm'`,
    );
    expect(rows).toEqual([{ failure: 'The agent stopped reporting', failed: true }]);
  });
});
