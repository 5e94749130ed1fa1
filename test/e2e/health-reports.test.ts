import { appendFile, chmod, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildAgentBundle } from '../../agent/bundle';
import { VmSummary } from '../../store/vms';
import { SimulatedVm } from '../../local/simulated-fleet';
import { CRD_ROUTE, CRD_STARTED, crdConnected, crdDisconnected } from '../support/crd-host-log';
import { TEST_ADMIN_SECRET, TEST_FLEET_TOKEN, waitFor } from '../support/fixtures';
import { TestStack, startTestStack } from '../support/stack';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;

describe('agent health reports to the real local allocator', () => {
  let env: TestStack;
  let dir: string;
  let vm: SimulatedVm;
  let crdVm: SimulatedVm;
  let gpuBroken: string;
  let hostLog: string;

  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 2 });
    dir = await mkdtemp(path.join(os.tmpdir(), 'lablink-health-'));
    // A stand-in nvidia-smi that fails while the flag file exists.
    gpuBroken = path.join(dir, 'gpu-broken');
    const nvidiaSmi = path.join(dir, 'nvidia-smi');
    await writeFile(
      nvidiaSmi,
      `#!/bin/sh\nif [ -e '${gpuBroken}' ]; then echo 'Unable to determine the device handle for GPU 0000:00:1E.0: GPU is lost.' >&2; exit 15; fi\necho 'Tesla T4, 41, 3 %'\n`,
    );
    await chmod(nvidiaSmi, 0o755);
    const agentBundle = path.join(dir, 'agent.js');
    await writeFile(agentBundle, buildAgentBundle());
    vm = await SimulatedVm.create({
      name: 'health-vm-1',
      allocatorUrl: env.url,
      fleetToken: TEST_FLEET_TOKEN,
      agentBundle,
      env: {
        LABLINK_NVIDIA_SMI: nvidiaSmi,
        LABLINK_HEARTBEAT_SECONDS: '0.3',
        LABLINK_GPU_CHECK_SECONDS: '0.3',
        LABLINK_IN_USE_CHECK_SECONDS: '0.3',
        LABLINK_IN_USE_PROCESS: 'lablink-test-in-use-marker',
      },
    });
    vm.start();
    // A VM as deployed: "in use" from the CRD host's lines, through a stand-in journalctl that gives this boot's lines of the `chromoting` identifier.
    hostLog = path.join(dir, 'chromoting.log');
    await writeFile(hostLog, `${CRD_STARTED}\n`);
    const journalctl = path.join(dir, 'journalctl');
    // Like the real one, it colours its lines when SYSTEMD_COLORS asks for it (the VM below asks).
    await writeFile(
      journalctl,
      `#!/bin/sh\necho "$*" > '${dir}/journalctl-args'\ncase " $* " in *" --boot "*"--identifier=chromoting "*"--output=cat "*) if [ "$SYSTEMD_COLORS" = 1 ]; then sed 's/^/\\x1b[0;1;39m/' '${hostLog}'; else cat '${hostLog}'; fi ;; esac\n`,
    );
    await chmod(journalctl, 0o755);
    crdVm = await SimulatedVm.create({
      name: 'health-vm-2',
      allocatorUrl: env.url,
      fleetToken: TEST_FLEET_TOKEN,
      agentBundle,
      env: {
        LABLINK_IN_USE_PROBE: 'crd-journal',
        LABLINK_JOURNALCTL: journalctl,
        LABLINK_IN_USE_CHECK_SECONDS: '0.3',
        SYSTEMD_COLORS: '1',
      },
    });
    crdVm.start();
  });
  afterAll(async () => {
    await crdVm?.dispose();
    await vm?.dispose();
    await env?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function vmHealth(hostname = 'health-vm-1') {
    const response = await fetch(`${env.url}/api/vms`, { headers: { authorization: ADMIN } });
    const { vms } = (await response.json()) as { vms: VmSummary[] };
    return vms.find((candidate) => candidate.hostname === hostname);
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

  it('with the CRD journal probe: not in use while the host waits, in use once a client connects, not once it leaves', async () => {
    const inUse = async () => (await vmHealth('health-vm-2'))?.in_use;
    await waitFor(async () => (await inUse()) === false, 'a first in-use report: nobody connected');
    expect(await readFile(path.join(dir, 'journalctl-args'), 'utf8')).toMatch(/--boot --identifier=chromoting --output=cat/);

    await appendFile(hostLog, `${crdConnected('ada')}\n${CRD_ROUTE}\n`);
    await waitFor(async () => (await inUse()) === true, 'the connection to be reported');

    await appendFile(hostLog, `${crdDisconnected('ada')}\n`);
    await waitFor(async () => (await inUse()) === false, 'the disconnection to be reported');
  });
});
