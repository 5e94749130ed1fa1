import { readFile } from 'node:fs/promises';
import { SimulatedVm } from '../../local/simulated-fleet';
import { useAgentHarness } from '../support/agent-harness';
import { crdCommand, fakeCode, waitFor } from '../support/fixtures';
import { submitForm } from '../support/stack';

async function callCount(vm: SimulatedVm): Promise<number> {
  try {
    return (await readFile(vm.recordFile, 'utf8')).trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

describe('the agent process', () => {
  const harness = useAgentHarness();

  async function vmRow(name: string) {
    return (await harness.env.db.pool.query(`SELECT state, error, crd_command, assignment_id FROM vms WHERE hostname = $1`, [name]))
      .rows[0];
  }

  it('does not run start-host twice when an assignment it already configured is delivered again', async () => {
    const vm = await harness.startVm('agent-once');
    const response = await submitForm(harness.env.url, { email: 'once@example.com', crd_command: crdCommand() });
    expect(((await response.json()) as { hostname: string }).hostname).toBe('agent-once');
    await waitFor(async () => (await vmRow('agent-once')).state === 'configured', 'the VM to be configured');

    // The allocator lost the report (say, a restart before it committed): it delivers again.
    await vm.stop('SIGKILL');
    const { rows } = await harness.env.db.pool.query(`SELECT crd_command FROM vms WHERE hostname = 'agent-once'`);
    expect(rows[0].crd_command).toBeNull();
    await harness.env.db.pool.query(`UPDATE vms SET state = 'delivered', crd_command = $1 WHERE hostname = 'agent-once'`, [crdCommand()]);
    vm.start();

    await waitFor(async () => (await vmRow('agent-once')).state === 'configured', 'the agent to report configured again');
    expect(await callCount(vm)).toBe(1);
  });

  it('reports a failed start-host as an error without the code or PIN, and wipes the command', async () => {
    const code = fakeCode();
    await harness.startVm('agent-fails', { startHostFailure: 'OAuth error: invalid_grant' });
    const response = await submitForm(harness.env.url, { email: 'fails@example.com', crd_command: crdCommand(code) });
    const { pin } = (await response.json()) as { pin: string };
    const row = await waitFor(async () => {
      const current = await vmRow('agent-fails');
      return current.state === 'error' && current;
    }, 'the agent to report the failure');
    expect(row.error).toMatch(/start-host exited with code 1: OAuth error: invalid_grant/);
    expect(row.error).not.toContain(code);
    expect(row.error).not.toContain(pin);
    expect(row.crd_command).toBeNull();
  });

  it('refuses to start without its configuration, saying what is missing', async () => {
    const { execFile } = await import('node:child_process');
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [harness.agentBundle], { env: { PATH: process.env.PATH } }, (error, _stdout, stderr) =>
        resolve({ code: error ? (error.code as number) : 0, stderr }),
      );
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/LABLINK_ALLOCATOR_URL/);
    expect(result.stderr).toMatch(/LABLINK_FLEET_TOKEN/);
  });
});
