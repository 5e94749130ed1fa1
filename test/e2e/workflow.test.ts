import { readFile } from 'node:fs/promises';
import { SimulatedFleet, startSimulatedFleet } from '../../local/simulated-fleet';
import { createLogger } from '../../core/log';
import { TEST_FLEET_TOKEN, crdCommand, fakeCode, waitFor } from '../support/fixtures';
import { TestStack, freeCount, startTestStack, submitForm } from '../support/stack';

interface StartHostCall {
  argv: string[];
  stdin: string;
  display: string | null;
}

async function startHostCalls(recordFile: string): Promise<StartHostCall[]> {
  try {
    return (await readFile(recordFile, 'utf8'))
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as StartHostCall);
  } catch {
    return [];
  }
}

describe('the CRD workflow end to end: real agents, allocator, form and PostgreSQL', () => {
  let env: TestStack;
  let fleet: SimulatedFleet;
  const logLines: string[] = [];

  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 2, aliveGraceSeconds: 2, log: createLogger('json', (line) => logLines.push(line)) });
    fleet = await startSimulatedFleet({
      count: 3,
      allocatorUrl: env.url,
      fleetToken: TEST_FLEET_TOKEN,
      namePrefix: 'wf-vm',
      onOutput: (name, line) => logLines.push(`[${name}] ${line}`),
    });
    await waitFor(async () => (await freeCount(env.url)) === 3, 'three agents to register');
  });

  afterAll(async () => {
    await fleet?.stop();
    await env?.close();
  });

  it('configures exactly the assigned VM with the participant’s code, its own name and the PIN twice', async () => {
    const code = fakeCode();
    expect(await freeCount(env.url)).toBe(3);

    const response = await submitForm(env.url, { email: 'alice@example.com', crd_command: crdCommand(code) }, 'text/html');
    expect(response.status).toBe(200);
    const page = await response.text();
    const hostname = /id="hostname">([^<]+)</.exec(page)?.[1];
    const pin = /id="pin">(\d+)</.exec(page)?.[1];
    expect(hostname).toMatch(/^wf-vm-\d$/);
    expect(pin).toMatch(/^\d{6}$/);
    expect(page).toContain('https://remotedesktop.google.com/access');

    const vm = fleet.vms.find((candidate) => candidate.name === hostname)!;
    const [call] = await waitFor(async () => {
      const calls = await startHostCalls(vm.recordFile);
      return calls.length > 0 && calls;
    }, 'start-host on the assigned VM');
    expect(call.argv).toEqual([`--code=${code}`, '--redirect-url=https://remotedesktop.google.com/_/oauthredirect', `--name=${hostname}`]);
    expect(call.stdin).toBe(`${pin}\n${pin}\n`);
    expect(call.display).toBe('');

    const row = await waitFor(async () => {
      const { rows } = await env.db.pool.query('SELECT state, crd_command FROM vms WHERE hostname = $1', [hostname]);
      return rows[0].state === 'configured' && rows[0];
    }, 'the agent to report configured');
    expect(row.crd_command).toBeNull();

    for (const other of fleet.vms.filter((candidate) => candidate !== vm)) {
      expect(await startHostCalls(other.recordFile)).toEqual([]);
      expect(other.running).toBe(true);
    }
    expect(await freeCount(env.url)).toBe(2);

    // The instructor sees every step in the logs, and never the code or the PIN.
    const logs = logLines.join('\n');
    for (const event of ['vm.registered', 'vm.assigned', 'vm.delivered', 'vm.configured', 'agent.start_host'])
      expect(logs).toContain(event);
    expect(logs).not.toContain(code);
    expect(logs).not.toContain(pin);
    expect(logs).not.toContain(TEST_FLEET_TOKEN);
  });

  it('never hands out a VM whose agent has stopped polling', async () => {
    const { rows: waiting } = await env.db.pool.query(`SELECT hostname FROM vms WHERE state = 'waiting' ORDER BY hostname DESC`);
    expect(waiting).toHaveLength(2);
    const stopped = fleet.vms.find((vm) => vm.name === waiting[0].hostname)!;
    await stopped.stop('SIGKILL');
    await waitFor(async () => {
      const { rows } = await env.db.pool.query(`SELECT alive_until < now() AS dead FROM vms WHERE hostname = $1`, [stopped.name]);
      return rows[0].dead;
    }, 'the stopped VM to fall out of the free pool');

    const assignedTo: string[] = [];
    for (const email of ['bob@example.com', 'carol@example.com']) {
      const response = await submitForm(env.url, { email, crd_command: crdCommand() });
      if (response.status === 200) assignedTo.push(((await response.json()) as { hostname: string }).hostname);
      else expect(response.status).toBe(503);
    }
    expect(assignedTo).not.toContain(stopped.name);
    expect(assignedTo).toHaveLength(1);
  });
});
