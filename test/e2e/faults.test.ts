import { ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildAgentBundle } from '../../agent/bundle';
import { newAppRole } from '../../store/app-role';
import { requestVm } from '../../store/assignment';
import { silentLogger } from '../../core/log';
import { freePort } from '../../local/postgres';
import { SimulatedVm } from '../../local/simulated-fleet';
import { startLocalStack } from '../../local/stack';
import { TestDatabase, createTestDatabase } from '../support/database';
import { TEST_ADMIN_SECRET, TEST_FLEET_TOKEN, crdCommand, fakeCode, waitFor } from '../support/fixtures';
import { RestartablePostgres, startRestartablePostgres } from '../support/restartable-postgres';
import { ALLOCATOR_PROCESS } from '../support/processes';
import { submitForm } from '../support/stack';

// Each fault starts real processes (tsx compiles the allocator at start): slow on a loaded machine, never a timing claim.
jest.setTimeout(180_000);

const ROOT = path.join(__dirname, '..', '..');

/** Whether any process has `fragment` in its command line (the orphaned start-host has the code). */
async function processRunningWith(fragment: string): Promise<boolean> {
  for (const pid of (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry))) {
    const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (commandLine.includes(fragment)) return true;
  }
  return false;
}

async function startHostCalls(vm: SimulatedVm): Promise<number> {
  try {
    return (await readFile(vm.recordFile, 'utf8')).trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

async function vmState(
  pool: { query: (text: string, values: unknown[]) => Promise<{ rows: { state: string; error: string | null }[] }> },
  hostname: string,
) {
  return (await pool.query('SELECT state, error FROM vms WHERE hostname = $1', [hostname])).rows[0];
}

describe('faults survived with nothing lost (real PostgreSQL, processes and HTTP)', () => {
  let bundleDir: string;
  let agentBundle: string;
  const vms: SimulatedVm[] = [];

  async function startVm(
    name: string,
    allocatorUrl: string,
    startHost: { startHostFailure?: string; startHostDelayMs?: number } = {},
  ): Promise<SimulatedVm> {
    const vm = await SimulatedVm.create({ name, allocatorUrl, fleetToken: TEST_FLEET_TOKEN, agentBundle, ...startHost });
    vms.push(vm);
    vm.start();
    return vm;
  }

  beforeAll(async () => {
    bundleDir = await mkdtemp(path.join(os.tmpdir(), 'lablink-faults-'));
    agentBundle = path.join(bundleDir, 'agent.js');
    await writeFile(agentBundle, buildAgentBundle());
  });
  afterAll(async () => {
    await Promise.all(vms.map((vm) => vm.dispose()));
    await rm(bundleDir, { recursive: true, force: true });
  });

  describe('with a database per test', () => {
    let db: TestDatabase;
    beforeEach(async () => {
      db = await createTestDatabase();
    });
    afterEach(async () => {
      await Promise.all(vms.map((vm) => vm.stop()));
      await db.drop();
    });

    function startAllocatorProcess(port: number): { child: ChildProcess; exited: Promise<unknown> } {
      const child = spawn(ALLOCATOR_PROCESS.command, ALLOCATOR_PROCESS.args, {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          PORT: String(port),
          LABLINK_DATABASE_URL: db.appUrl,
          LABLINK_FLEET_TOKEN: TEST_FLEET_TOKEN,
          LABLINK_HOLD_SECONDS: '30',
        },
        stdio: 'ignore',
      });
      return { child, exited: new Promise((resolve) => child.once('exit', resolve)) };
    }

    it('the allocator dies after an assignment commits and before it answers: the next allocator delivers, start-host runs once', async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const first = startAllocatorProcess(port);
      const vm = await startVm('fault-vm-1', url);
      await waitFor(async () => (await vmState(db.pool, 'fault-vm-1'))?.state === 'waiting', 'the VM to wait', 60_000);
      await waitFor(
        async () => ((await (await fetch(`${url}/api/health`)).json()) as { heldPolls: number }).heldPolls === 1,
        'the poll to be held',
      );

      // Frozen, it cannot answer the held poll; then it dies without a word.
      first.child.kill('SIGSTOP');
      const assigned = await requestVm(db.sql, { email: 'crash@example.com', crdCommand: crdCommand() });
      expect(assigned).toMatchObject({ kind: 'assigned', hostname: 'fault-vm-1' });
      first.child.kill('SIGKILL');
      await first.exited;

      const second = startAllocatorProcess(port);
      try {
        await waitFor(
          async () => (await vmState(db.pool, 'fault-vm-1')).state === 'configured',
          'the VM to be configured via the new allocator',
          45_000,
        );
        expect(await startHostCalls(vm)).toBe(1);
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    });

    it('two allocators share one database: a VM held by one is woken by a request made through the other', async () => {
      const stacks = await Promise.all(
        [0, 1].map(() =>
          startLocalStack({
            databaseUrl: db.url,
            appRole: db.appRole,
            fleetToken: TEST_FLEET_TOKEN,
            adminSecret: TEST_ADMIN_SECRET,
            holdSeconds: 30,
            log: silentLogger,
          }),
        ),
      );
      try {
        const vm = await startVm('fault-vm-2', stacks[0].url);
        await waitFor(() => stacks[0].allocator.holds.size === 1, 'the poll to be held by the first allocator');
        const response = await submitForm(stacks[1].url, { email: 'two@example.com', crd_command: crdCommand() });
        expect(response.status).toBe(200);
        await waitFor(async () => (await vmState(db.pool, 'fault-vm-2')).state === 'configured', 'the VM to be configured');
        expect(await startHostCalls(vm)).toBe(1);
        expect(stacks[1].allocator.holds.size).toBe(0);
      } finally {
        await Promise.all(stacks.map((stack) => stack.close()));
      }
    });

    it.each([
      ['start-host went on to register the host', {}, 'configured', null],
      ['start-host never registered the host', { startHostFailure: 'killed' }, 'error', /stopped while start-host was running/],
    ])('the agent is killed while start-host runs and %s: no second start-host, the right state', async (_case, failure, state, error) => {
      const stack = await startLocalStack({
        databaseUrl: db.url,
        appRole: db.appRole,
        fleetToken: TEST_FLEET_TOKEN,
        adminSecret: TEST_ADMIN_SECRET,
        holdSeconds: 2,
        log: silentLogger,
      });
      try {
        const name = `fault-vm-${state}`;
        const vm = await startVm(name, stack.url, { startHostDelayMs: 1500, ...failure });
        await waitFor(async () => (await vmState(db.pool, name))?.state === 'waiting', 'the VM to wait', 60_000);
        const code = fakeCode();
        await submitForm(stack.url, { email: `${state}@example.com`, crd_command: crdCommand(code) });
        await waitFor(async () => (await startHostCalls(vm)) === 1, 'start-host to start');
        await vm.stop('SIGKILL');
        // The orphaned start-host finishes (or fails) on its own before the agent comes back.
        await waitFor(async () => !(await processRunningWith(code)), 'the orphaned start-host to end', 60_000);
        vm.start();
        const row = await waitFor(async () => {
          const current = await vmState(db.pool, name);
          return (current.state === 'configured' || current.state === 'error') && current;
        }, 'the restarted agent to report');
        expect(row.state).toBe(state);
        if (error) expect(row.error).toMatch(error);
        expect(await startHostCalls(vm)).toBe(1);
      } finally {
        await stack.close();
      }
    });
  });

  describe('PostgreSQL restarting under waiting VMs', () => {
    let postgres: RestartablePostgres;
    beforeAll(async () => {
      postgres = await startRestartablePostgres();
    });
    afterAll(async () => postgres?.stop());

    it('the allocator and the agents recover without a restart of their own, and the next assignment is delivered', async () => {
      const stack = await startLocalStack({
        databaseUrl: postgres.url,
        appRole: newAppRole(),
        fleetToken: TEST_FLEET_TOKEN,
        adminSecret: TEST_ADMIN_SECRET,
        holdSeconds: 2,
        log: silentLogger,
      });
      try {
        const vm = await startVm('restart-vm-1', stack.url);
        await waitFor(
          async () => (await stack.sql.query<{ count: number }>('SELECT count(*)::int AS count FROM vms'))[0].count === 1,
          'the VM to register',
        );
        await postgres.restart();
        await waitFor(() => stack.allocator.listener.isListening, 'the listener to reconnect', 30_000);
        const response = await waitFor(
          async () => {
            const attempt = await submitForm(stack.url, { email: 'restart@example.com', crd_command: crdCommand() });
            return attempt.status === 200 && attempt;
          },
          'the form to assign again',
          30_000,
        );
        expect(((await response.json()) as { hostname: string }).hostname).toBe('restart-vm-1');
        await waitFor(
          async () =>
            (await stack.sql.query<{ state: string }>(`SELECT state FROM vms WHERE hostname = 'restart-vm-1'`))[0].state === 'configured',
          'configured',
          30_000,
        );
        expect(await startHostCalls(vm)).toBe(1);
      } finally {
        await stack.close();
      }
    });
  });
});
