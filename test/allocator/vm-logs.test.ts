import { readVmLogs } from '../../core/vm-logs';
import { VmLogLine } from '../../core/wire';
import { TestStack, freeCount, pollAsVm, sendLogsAsVm, startTestStack } from '../support/stack';

const bootLine = (text: string): VmLogLine => ({ at: new Date().toISOString(), level: 'info', source: 'boot', text });

describe('POST /vm_logs on the real allocator', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 1 });
  });
  afterAll(async () => env?.close());

  it('takes boot lines before the first poll: the VM is listed with its step but not free until it polls', async () => {
    const response = await sendLogsAsVm(env.url, { hostname: 'boot-vm-1', step: 'install-crd', lines: [bootLine('Setting up chrome-remote-desktop ...')] });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ accepted: 1 });
    expect(await readVmLogs(env.db.sql, 'boot-vm-1')).toMatchObject({ step: 'install-crd', lines: [{ text: 'Setting up chrome-remote-desktop ...', source: 'boot' }] });
    expect(await freeCount(env.url)).toBe(0);
    expect((await pollAsVm(env.url, 'boot-vm-1')).status).toBe(204);
    expect(await freeCount(env.url)).toBe(1);
  });

  it('keeps only the last 500 lines of a VM when 600 come in six requests', async () => {
    for (let request = 0; request < 6; request += 1) {
      const lines = Array.from({ length: 100 }, (_, index) => bootLine(`boot line ${request * 100 + index + 1}`));
      expect((await sendLogsAsVm(env.url, { hostname: 'chatty-vm', lines })).status).toBe(200);
    }
    const texts = (await readVmLogs(env.db.sql, 'chatty-vm'))!.lines.map((line) => line.text);
    expect(texts).toHaveLength(500);
    expect(texts[0]).toBe('boot line 101');
    expect(texts.at(-1)).toBe('boot line 600');
    expect(texts).not.toContain('boot line 1');
    expect(texts).not.toContain('boot line 100');
  });
});
