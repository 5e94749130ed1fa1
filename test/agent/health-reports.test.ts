import { chmod, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildAgentBundle } from '../../agent/bundle';
import { VmSummary } from '../../core/vms';
import { SimulatedVm } from '../../local/simulated-fleet';
import { TEST_ADMIN_SECRET, TEST_FLEET_TOKEN, waitFor } from '../support/fixtures';
import { TestStack, startTestStack } from '../support/stack';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;

describe('agent health reports to the real local allocator', () => {
  let env: TestStack;
  let dir: string;
  let vm: SimulatedVm;
  let gpuBroken: string;

  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 2 });
    dir = await mkdtemp(path.join(os.tmpdir(), 'lablink-health-'));
    // A stand-in nvidia-smi that fails while the flag file exists.
    gpuBroken = path.join(dir, 'gpu-broken');
    const nvidiaSmi = path.join(dir, 'nvidia-smi');
    await writeFile(nvidiaSmi, `#!/bin/sh\nif [ -e '${gpuBroken}' ]; then echo 'Unable to determine the device handle for GPU 0000:00:1E.0: GPU is lost.' >&2; exit 15; fi\necho 'Tesla T4, 41, 3 %'\n`);
    await chmod(nvidiaSmi, 0o755);
    const agentBundle = path.join(dir, 'agent.js');
    await writeFile(agentBundle, buildAgentBundle());
    vm = await SimulatedVm.create({
      name: 'health-vm-1',
      allocatorUrl: env.url,
      fleetToken: TEST_FLEET_TOKEN,
      agentBundle,
      env: { LABLINK_NVIDIA_SMI: nvidiaSmi, LABLINK_HEARTBEAT_SECONDS: '0.3', LABLINK_GPU_CHECK_SECONDS: '0.3', LABLINK_IN_USE_CHECK_SECONDS: '0.3', LABLINK_IN_USE_PROCESS: 'lablink-test-in-use-marker' },
    });
    vm.start();
  });
  afterAll(async () => {
    await vm?.dispose();
    await env?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function vmHealth() {
    const response = await fetch(`${env.url}/api/vms`, { headers: { authorization: ADMIN } });
    const { vms } = (await response.json()) as { vms: VmSummary[] };
    return vms.find((candidate) => candidate.hostname === 'health-vm-1');
  }

  it('sends heartbeats with boot id, uptime, CRD host state and free disk, and the GPU check', async () => {
    const health = await waitFor(async () => {
      const current = await vmHealth();
      return current?.health_reported_at && current.gpu_status && current.in_use !== null ? current : undefined;
    }, 'a heartbeat, a GPU report and an in-use report');
    // A simulated VM's CRD host "runs" while its agent does.
    expect(health).toMatchObject({ crd_running: true, gpu_status: 'ok', gpu_detail: 'Tesla T4, 41, 3 %', in_use: false, stale: false });
    expect(health.boot_id).toMatch(/^[\w-]+$/);
    expect(health.uptime_seconds!).toBeGreaterThan(0);
    expect(health.disk_free_mb!).toBeGreaterThan(0);
  });

  it('reports a failing GPU when nvidia-smi stops answering, and ok again when it recovers', async () => {
    await writeFile(gpuBroken, '');
    const failed = await waitFor(async () => {
      const current = await vmHealth();
      return current?.gpu_status === 'failed' && current;
    }, 'the GPU failure to be reported');
    expect(failed.gpu_detail).toContain('GPU is lost');
    await unlink(gpuBroken);
    await waitFor(async () => (await vmHealth())?.gpu_status === 'ok', 'the GPU to be reported ok again');
  });
});
