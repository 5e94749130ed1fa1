import { setTimeout as sleep } from 'node:timers/promises';
import { parseCrdCommand } from '../core/crd-command';
import { OAUTH_REFUSAL } from '../core/go-no-go';
import { RESET_ORDER, VmAssignmentResponse } from '../contract/wire';
import { crdCommandFor } from './commands';

/** Google as the benchmark sees it: a code works once, and only if Google issued it. */
export class SimulatedGoogle {
  private readonly issued = new Set<string>();
  private issuedCount = 0;

  /** A participant's fresh command from remotedesktop.google.com/headless. */
  issue(): string {
    const command = crdCommandFor((this.issuedCount += 1));
    this.issued.add(codeOf(command));
    return command;
  }

  /** start-host's call to Google: true when the code registers the host. */
  redeem(command: string): boolean {
    return this.issued.delete(codeOf(command));
  }
}

/** A well-formed command with a code Google never issued (a stranger's made-up one). */
export function madeUpCommand(index: number): string {
  return crdCommandFor(1_000_000_000 + index);
}

export function codeOf(command: string): string {
  const parsed = parseCrdCommand(command);
  if (!parsed.ok) throw new Error(`not a CRD command: ${parsed.message}`);
  return parsed.command.code;
}

export interface CapacityVmOptions {
  url: string;
  fleetToken: string;
  hostname: string;
  google: SimulatedGoogle;
  /** How long start-host and a reset take, in real milliseconds. */
  startHostMs: number;
  resetMs: number;
  /** Told of each assignment's command as it arrives, and of each reset order (the VM was taken back). */
  onAssignment(hostname: string, command: string): void;
  onReset(hostname: string): void;
  signal: AbortSignal;
}

/**
 * One VM as the allocator sees it, in this process: the agent's wire protocol (contract/wire.ts)
 * over real HTTP. It long-polls for work, runs a "start-host" that asks SimulatedGoogle (a
 * refused code reports `error` with start-host's own words), reports the in-use probe (false
 * until its participant connects), and takes a reset's time when taken back.
 */
export class CapacityVm {
  constructor(private readonly options: CapacityVmOptions) {}

  /** The participant connected with Chrome Remote Desktop: the in-use probe sees them. */
  connected(): Promise<void> {
    return this.send('/vm_health', { inUse: true });
  }

  /** Registers (a first log batch), reports the probe's "not in use", then polls until the benchmark ends. */
  async run(): Promise<void> {
    const { signal } = this.options;
    try {
      await this.send('/vm_logs', { step: 'waiting', lines: [] });
      await this.send('/vm_health', { inUse: false });
      while (!signal.aborted) {
        const response = await this.post('/vm_startup', { reportsOutcome: true });
        if (response.status === 200) await this.configure((await response.json()) as VmAssignmentResponse);
        else if (response.status === 202 && ((await response.json()) as typeof RESET_ORDER).status === RESET_ORDER.status)
          await this.reset();
        else if (response.status === 204) await response.arrayBuffer();
        else throw new Error(`${this.options.hostname}: /vm_startup answered ${response.status}: ${await response.text()}`);
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    }
  }

  private async configure(assignment: VmAssignmentResponse): Promise<void> {
    this.options.onAssignment(this.options.hostname, assignment.command);
    await sleep(this.options.startHostMs, undefined, { signal: this.options.signal });
    const registered = this.options.google.redeem(assignment.command);
    await this.send('/vm_status', {
      assignment: assignment.assignment,
      outcome: registered ? 'configured' : 'error',
      ...(registered ? {} : { message: OAUTH_REFUSAL }),
    });
  }

  private async reset(): Promise<void> {
    this.options.onReset(this.options.hostname);
    await sleep(this.options.resetMs, undefined, { signal: this.options.signal });
    await this.send('/vm_health', { inUse: false });
    await this.send('/vm_reset', { outcome: 'done' });
  }

  /** A report the allocator must take: anything but a 2xx ends the benchmark. */
  private async send(path: string, body: object): Promise<void> {
    const response = await this.post(path, body);
    const text = await response.text();
    if (!response.ok) throw new Error(`${this.options.hostname}: ${path} answered ${response.status}: ${text}`);
  }

  private post(path: string, body: object): Promise<Response> {
    return fetch(`${this.options.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.options.fleetToken}` },
      body: JSON.stringify({ hostname: this.options.hostname, ...body }),
      signal: this.options.signal,
    });
  }
}
