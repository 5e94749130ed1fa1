import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildAgentBundle } from '../../agent/bundle';
import { SimulatedVm, SimulatedVmOptions } from '../../local/simulated-fleet';
import { TEST_FLEET_TOKEN, waitFor } from './fixtures';
import { TestStack, startTestStack } from './stack';

export interface AgentHarness {
  /** The local stack the agents poll; set once the suite's beforeAll ran. */
  readonly env: TestStack;
  /** The agent bundle the VMs run. */
  readonly agentBundle: string;
  /** Starts a real agent process as VM `name` and waits until it polls. */
  startVm(name: string, options?: Pick<SimulatedVmOptions, 'startHostFailure' | 'env' | 'setup'>): Promise<SimulatedVm>;
}

/**
 * Registers a suite's hooks: a test stack with short holds, the agent bundle built once, and
 * every VM a test started stopped after it and removed at the end.
 */
export function useAgentHarness(): AgentHarness {
  let env: TestStack | undefined;
  let bundleDir: string;
  let agentBundle: string;
  const vms: SimulatedVm[] = [];

  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 2, aliveGraceSeconds: 2 });
    bundleDir = await mkdtemp(path.join(os.tmpdir(), 'lablink-agent-test-'));
    agentBundle = path.join(bundleDir, 'agent.js');
    await writeFile(agentBundle, buildAgentBundle());
  });
  afterAll(async () => {
    await Promise.all(vms.map((vm) => vm.dispose()));
    await env?.close();
    await rm(bundleDir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await Promise.all(vms.map((vm) => vm.stop()));
    await env?.db.pool.query(`UPDATE vms SET alive_until = now()`);
  });

  return {
    get env() {
      if (!env) throw new Error('The agent harness is used before its beforeAll ran.');
      return env;
    },
    get agentBundle() {
      return agentBundle;
    },
    async startVm(name, options = {}) {
      const stack = this.env;
      const vm = await SimulatedVm.create({ name, allocatorUrl: stack.url, fleetToken: TEST_FLEET_TOKEN, agentBundle, ...options });
      vms.push(vm);
      vm.start();
      await waitFor(
        async () => (await stack.db.pool.query(`SELECT 1 FROM vms WHERE hostname = $1 AND alive_until > now()`, [name])).rowCount === 1,
        `${name} to register`,
      );
      return vm;
    },
  };
}
