import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay } from '../core/backoff';
import { parseCrdCommand } from '../core/crd-command';
import { Logger, errorMessage } from '../core/log';
import { ConfigurationOutcome, PROBE_CODE_MARKER, VmResetReport, VmStatusReport } from '../contract/wire';
import { readAssignmentRecord, writeAssignmentRecord } from './assignment-record';
import { AllocatorClient } from './allocator-client';
import { AgentConfig } from './agent-config';
import { hostRegisteredSince } from './crd-host';
import { ResetResult, resetDesktop } from './desktop-reset';
import { runStartHost } from './start-host';
import { untilSettledOrAborted } from './wake-up';

const BACKOFF_BASE_MS = 1_000;
const INTERRUPTED =
  'The agent stopped while start-host was running and the host was not registered; the code is probably spent. Get a new command and submit it again with the same email.';
const BACKOFF_MAX_MS = 30_000;
/** Longer than any hold the allocator uses: a poll that hangs past this is treated as lost. */
const POLL_TIMEOUT_MS = 10 * 60_000;

interface Assignment {
  id: string;
  pin: string;
  command: string;
}

function parseAssignment(body: unknown): Assignment | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { status, pin, command, assignment } = body as Record<string, unknown>;
  if (status !== 'success' || typeof command !== 'string') return undefined;
  const pinText = typeof pin === 'number' ? String(pin) : pin;
  if (typeof pinText !== 'string' || !/^\d{6,}$/.test(pinText)) return undefined;
  // An allocator without assignment ids (LabLink's own) still gets idempotency per command.
  const id = typeof assignment === 'string' ? assignment : createHash('sha256').update(command).digest('hex');
  return { id, pin: pinText, command };
}

/** The VM agent: long-poll the allocator, configure CRD once per assignment, reset the VM when taken back, report how it went. */
export class Agent {
  constructor(
    private readonly config: AgentConfig,
    private readonly client: AllocatorClient,
    private readonly log: Logger,
    /** Told the VM's step as it changes. */
    private readonly onStep: (step: string) => void = () => undefined,
    /** Resolves when the VM may take participants: its workshop setup passed. */
    private readonly setupReady: () => Promise<void> = () => Promise.resolve(),
    /** Told that the home was recreated: the workshop setup must run again. */
    private readonly homeRecreated: () => void = () => undefined,
  ) {}

  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    this.log.info('agent.started', { vm: this.config.vmName, allocator: this.config.allocatorUrl });
    await this.untilSetupReady(signal);
    this.onStep('waiting');
    while (!signal.aborted) {
      // Not polling while a setup (re-)runs: the VM leaves the pool once its last poll's window ends.
      await this.untilSetupReady(signal);
      if (signal.aborted) break;
      try {
        const response = await this.post(
          '/vm_startup',
          { hostname: this.config.vmName, reportsOutcome: true },
          AbortSignal.any([signal, AbortSignal.timeout(POLL_TIMEOUT_MS)]),
        );
        if (response.status === 204) {
          failures = 0;
          continue;
        }
        if (response.status === 202) {
          failures = 0;
          const order = (await response.json().catch(() => undefined)) as { status?: string } | undefined;
          if (order?.status === 'reset') await this.reset(signal);
          else this.log.warn('agent.bad_order', { vm: this.config.vmName });
          continue;
        }
        if (response.status === 200) {
          const assignment = parseAssignment(await response.json());
          if (assignment) {
            failures = 0;
            await this.configure(assignment, signal);
            continue;
          }
          // Not an assignment we can use: polling again at once would hammer a confused allocator.
          failures += 1;
          this.log.warn('agent.bad_assignment', { vm: this.config.vmName, attempt: failures });
        } else {
          failures += 1;
          this.log.warn('agent.poll_refused', { status: response.status, reason: (await response.text()).slice(0, 200) });
        }
      } catch (error) {
        if (signal.aborted) break;
        failures += 1;
        this.log.warn('agent.poll_failed', { reason: errorMessage(error), attempt: failures });
      }
      await sleep(backoffDelay(failures, BACKOFF_BASE_MS, BACKOFF_MAX_MS), undefined, { signal }).catch(() => undefined);
    }
  }

  private untilSetupReady(signal: AbortSignal): Promise<void> {
    return untilSettledOrAborted(this.setupReady(), signal);
  }

  private async configure(assignment: Assignment, signal: AbortSignal): Promise<void> {
    const { stateDir, vmName } = this.config;
    const previous = await readAssignmentRecord(stateDir);
    if (previous?.assignment === assignment.id) {
      // Delivered again (our report was lost, or we restarted): never run start-host twice.
      if (!previous.outcome) {
        // We died while start-host ran: if it still registered the host, the VM is configured.
        const registered = await hostRegisteredSince(this.config.crdConfigDir, new Date(previous.startedAt));
        previous.outcome = registered ? 'configured' : 'error';
        previous.message = registered ? undefined : INTERRUPTED;
        await writeAssignmentRecord(stateDir, previous);
        this.log.warn('agent.start_host_interrupted', { vm: vmName, outcome: previous.outcome });
      }
      return this.report(assignment.id, previous.outcome, previous.message, signal);
    }

    const parsed = parseCrdCommand(assignment.command);
    if (!parsed.ok) return this.report(assignment.id, 'error', 'The agent rejected the command it received.', signal);

    await writeAssignmentRecord(stateDir, { assignment: assignment.id, startedAt: new Date().toISOString() });
    this.log.info('agent.start_host', { vm: vmName });
    const result = await runStartHost(this.config, parsed.command, assignment.pin);
    const outcome: ConfigurationOutcome = result.ok ? 'configured' : 'error';
    const message = result.ok ? undefined : result.message;
    await writeAssignmentRecord(stateDir, { assignment: assignment.id, startedAt: new Date().toISOString(), outcome, message });
    // The go / no-go probe's refusal is the expected answer: not an error on the dashboard.
    const probe = parsed.command.code.includes(PROBE_CODE_MARKER);
    this.log[result.ok || probe ? 'info' : 'error']('agent.start_host_done', {
      vm: vmName,
      outcome,
      reason: message,
      ...(probe ? { probe } : {}),
    });
    await this.report(assignment.id, outcome, message, signal);
  }

  /**
   * The VM was taken back: wipe it, announcing each step on the progress channel, run the
   * workshop setup again in the new home, and say how it ended before polling for the next participant.
   */
  private async reset(signal: AbortSignal): Promise<void> {
    const { vmName } = this.config;
    this.log.info('agent.reset_started', { vm: vmName });
    const result: ResetResult = this.config.reset
      ? await resetDesktop({ ...this.config, reset: this.config.reset }, (step) => {
          this.onStep(step);
          this.log.info('agent.reset_step', { vm: vmName, step });
        })
      : { ok: false, message: 'This agent has no desktop user to reset (set LABLINK_DESKTOP_USER).' };
    if (result.ok) {
      // The VM is still `resetting`, so nobody gets it before the setup is back in the new home.
      this.homeRecreated();
      await this.untilSetupReady(signal);
      if (signal.aborted) return;
      this.log.info('agent.reset_done', { vm: vmName });
    } else {
      this.log.error('agent.reset_failed', { vm: vmName, reason: result.message });
    }
    const report: VmResetReport = {
      hostname: vmName,
      outcome: result.ok ? 'done' : 'failed',
      ...(result.ok ? {} : { message: result.message }),
    };
    await this.send('/vm_reset', report, signal);
    this.onStep('waiting');
  }

  private report(assignment: string, outcome: ConfigurationOutcome, message: string | undefined, signal: AbortSignal): Promise<void> {
    const report: VmStatusReport = { hostname: this.config.vmName, assignment, outcome, ...(message ? { message } : {}) };
    return this.send('/vm_status', report, signal);
  }

  /** Retries until the allocator has the report; a 4xx means it no longer wants it. */
  private async send(path: string, report: object, signal: AbortSignal): Promise<void> {
    for (let attempt = 1; !signal.aborted; attempt += 1) {
      try {
        const response = await this.post(path, report, AbortSignal.any([signal, AbortSignal.timeout(30_000)]));
        if (response.ok) return;
        if (response.status < 500) {
          this.log.warn('agent.report_refused', { status: response.status, reason: (await response.text()).slice(0, 200) });
          return;
        }
      } catch (error) {
        if (signal.aborted) return;
        this.log.warn('agent.report_failed', { reason: errorMessage(error), attempt });
      }
      await sleep(backoffDelay(attempt, BACKOFF_BASE_MS, BACKOFF_MAX_MS), undefined, { signal }).catch(() => undefined);
    }
  }

  private post(path: string, body: object, signal: AbortSignal): Promise<Response> {
    return this.client.post(path, body, signal);
  }
}
