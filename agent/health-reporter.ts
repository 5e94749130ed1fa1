import { setTimeout as sleep } from 'node:timers/promises';
import { HealthReport } from '../contract/health-report';
import { VmHealthAnswer } from '../contract/wire';
import { backoffDelay } from '../core/backoff';
import { Logger, errorMessage } from '../core/log';
import { HealthSchedule, InUseProbe } from './agent-config';
import { AllocatorClient } from './allocator-client';
import { crdClientConnectedInJournal } from './crd-connections';
import { checkGpu, processRunning, readHeartbeat } from './probes';
/**
 * `process`: a process whose command line contains `name` runs (the workshop's software, or a
 * local stand-in); `crd-journal`: the CRD host logged a client connected and not yet gone.
 */
function measureInUse(probe: InUseProbe): Promise<boolean> {
  return probe.kind === 'process' ? processRunning(probe.name) : crdClientConnectedInJournal(probe.journalctl);
}

const RETRY_MAX_MS = 60_000;

/** Waits about `seconds` (±20%), so a fleet's reports spread out. */
function jittered(seconds: number): number {
  return seconds * 1000 * (0.8 + Math.random() * 0.4);
}

/**
 * The agent's health reports, each on its own schedule: a heartbeat every interval, the GPU
 * check and "in use" only when they change. A report the allocator did not take is sent
 * again with backoff; an allocator that is away stops nothing.
 */
export class HealthReporter {
  constructor(
    private readonly vmName: string,
    private readonly client: AllocatorClient,
    private readonly schedule: HealthSchedule,
    private readonly log: Logger,
    /** Called when an answer says the admin asked for the workshop setup to run again. */
    private readonly onRerunSetup: () => void = () => undefined,
  ) {}

  run(signal: AbortSignal): Promise<void> {
    const loops = [
      this.loop(
        'heartbeat',
        this.schedule.heartbeatSeconds,
        async () => ({ heartbeat: await readHeartbeat(this.schedule.crdProcess) }),
        signal,
        false,
      ),
      this.loop('gpu', this.schedule.gpuCheckSeconds, async () => ({ gpu: await checkGpu(this.schedule.nvidiaSmi) }), signal, true),
    ];
    const inUseProbe = this.schedule.inUseProbe;
    if (inUseProbe) {
      loops.push(
        this.loop('in_use', this.schedule.inUseCheckSeconds, async () => ({ inUse: await measureInUse(inUseProbe) }), signal, true),
      );
    }
    return Promise.all(loops).then(() => undefined);
  }

  private async loop(
    name: string,
    seconds: number,
    measure: () => Promise<HealthReport>,
    signal: AbortSignal,
    onlyChanges: boolean,
  ): Promise<void> {
    let lastSent: string | undefined;
    let failures = 0;
    while (!signal.aborted) {
      let wait = jittered(seconds);
      try {
        const report = await measure();
        const fingerprint = JSON.stringify(report);
        if (!onlyChanges || fingerprint !== lastSent) {
          const response = await this.client.post(
            '/vm_health',
            { hostname: this.vmName, ...report },
            AbortSignal.any([signal, AbortSignal.timeout(30_000)]),
          );
          if (!response.ok) throw new Error(`allocator answered ${response.status}`);
          lastSent = fingerprint;
          const answer = (await response.json().catch(() => ({}))) as Partial<VmHealthAnswer>;
          if (answer.rerunSetup === true) this.onRerunSetup();
        }
        failures = 0;
      } catch (error) {
        if (signal.aborted) break;
        failures += 1;
        wait = backoffDelay(failures, 1_000, Math.min(RETRY_MAX_MS, seconds * 1000));
        this.log.warn('agent.health_report_failed', { report: name, reason: errorMessage(error), attempt: failures });
      }
      await sleep(wait, undefined, { signal }).catch(() => undefined);
    }
  }
}
