import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildAgentBundle } from '../../agent/bundle';
import { SimulatedVm, SimulatedVmOptions } from '../../local/simulated-fleet';
import type { LocalStackOptions } from '../../local/stack';
import { TEST_FLEET_TOKEN, waitFor } from './fixtures';
import { TestStack, freeCount, startTestStack } from './stack';

export interface Deployments {
  /** A local stack whose VMs are real agent processes, one per entry of `vmOptions` (named lablink-vm-1…). */
  start(
    vmOptions: Pick<SimulatedVmOptions, 'setup'>[],
    stackOptions?: Pick<LocalStackOptions, 'expiresAt' | 'accessCode'>,
  ): Promise<TestStack & { vms: SimulatedVm[] }>;
}

/** Registers a suite's hooks: the agent bundle built once, each test's deployment stopped and dropped after it. */
export function useDeployments(): Deployments {
  let bundleDir: string;
  let agentBundle: string;
  let env: TestStack | undefined;
  const vms: SimulatedVm[] = [];

  beforeAll(async () => {
    bundleDir = await mkdtemp(path.join(os.tmpdir(), 'lablink-deployment-'));
    agentBundle = path.join(bundleDir, 'agent.js');
    await writeFile(agentBundle, buildAgentBundle());
  });
  afterAll(() => rm(bundleDir, { recursive: true, force: true }));
  afterEach(async () => {
    await Promise.all(vms.splice(0).map((vm) => vm.dispose()));
    await env?.close();
    env = undefined;
  });

  return {
    async start(vmOptions, stackOptions = {}) {
      env = await startTestStack({ holdSeconds: 2, aliveGraceSeconds: 2, ...stackOptions });
      for (const [index, options] of vmOptions.entries()) {
        const vm = await SimulatedVm.create({
          name: `lablink-vm-${index + 1}`,
          allocatorUrl: env.url,
          fleetToken: TEST_FLEET_TOKEN,
          agentBundle,
          ...options,
        });
        vms.push(vm);
        vm.start();
      }
      return { ...env, vms: [...vms] };
    },
  };
}

/** Waits until `count` VMs of the deployment are free. */
export async function untilFree(url: string, count: number): Promise<void> {
  await waitFor(async () => (await freeCount(url)) === count, `${count} VMs to be free`);
}
