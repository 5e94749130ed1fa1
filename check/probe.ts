import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CheckLine, NETWORK_FAILURE, OAUTH_REFUSAL, probeCommand } from '../core/go-no-go';
import { PROBE_EMAIL } from '../contract/wire';
import type { VmSummary } from '../store/vms';
import { LabLinkClient } from './admin-client';

export interface ProbeOptions {
  accessCode?: string;
  /** How long to wait for start-host's answer, and then for the VM's reset. */
  timeoutMs: number;
  pollMs: number;
}

type AssignmentStatus = { hostname: string; progress: string; error: string | null; message: string };

const NAME = 'probe';
const line = (status: CheckLine['status'], message: string, action?: string): CheckLine => ({
  status,
  name: NAME,
  message,
  ...(action ? { action } : {}),
});

/** Polls `read` until it returns a value, or undefined once `timeoutMs` has passed. */
async function until<T>(read: () => Promise<T | undefined>, options: ProbeOptions): Promise<T | undefined> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined || Date.now() > deadline) return value;
    await sleep(options.pollMs);
  }
}

const listVms = async (client: LabLinkClient) => (await client.adminJson<{ vms: VmSummary[] }>('/api/vms')).vms;
/** Free as the form counts it (FREE_VM in store/statements.ts), read from the admin's VM list. */
export const isFree = (vm: VmSummary) => vm.state === 'waiting' && vm.email === null && vm.polling && vm.failed_at === null;
const release = (client: LabLinkClient, hostname: string) =>
  client.adminJson(`/api/vms/${encodeURIComponent(hostname)}/release`, { method: 'POST' });

/** What start-host's answer to the probe says about the VM. */
function judgeAnswer(hostname: string, status: AssignmentStatus | undefined, timeoutMs: number): CheckLine {
  if (!status) {
    return line(
      'FAIL',
      `${hostname} got the probe but did not report start-host's answer within ${Math.round(timeoutMs / 1000)} s`,
      'See its log on the dashboard: is its agent running and reaching the allocator?',
    );
  }
  const error = status.error ?? '';
  if (status.progress === 'failed' && error.includes(OAUTH_REFUSAL)) {
    return line(
      'PASS',
      `${hostname} ran start-host and Google refused the probe's code, as it must: Chrome Remote Desktop is installed and reaches Google`,
    );
  }
  if (error.includes(NETWORK_FAILURE))
    return line(
      'FAIL',
      `${hostname}: start-host cannot reach Google (${error})`,
      "Check the VMs' way out to the internet (NAT gateway, egress rules).",
    );
  if (status.progress === 'ready') {
    return line(
      'FAIL',
      `${hostname} reported a code Google never issued as accepted`,
      "Its start-host is not Chrome Remote Desktop's, or it runs LabLink's own client, which cannot report start-host's answer.",
    );
  }
  return line(
    'FAIL',
    `${hostname}: ${error || status.message}`,
    "See its log on the dashboard; is CRD installed (the boot log's install-crd step)?",
  );
}

/**
 * One synthetic participant end to end through the public form: a VM is assigned, its agent runs
 * start-host with a code Google refuses, and the VM is released, reset and free again. The probe
 * has a reserved address, so nobody mistakes it for a participant, and leaves no participant behind.
 */
export async function runProbe(client: LabLinkClient, options: ProbeOptions): Promise<CheckLine[]> {
  // A probe interrupted before (Ctrl-C) may still hold a VM: give it back first.
  for (const vm of (await listVms(client)).filter((candidate) => candidate.email === PROBE_EMAIL)) await release(client, vm.hostname);
  const fields = new URLSearchParams({ email: PROBE_EMAIL, crd_command: probeCommand(randomBytes(12).toString('base64url')) });
  if (options.accessCode) fields.set('access_code', options.accessCode);
  const response = await client.fetch('/api/request_vm', { method: 'POST', headers: { accept: 'application/json' }, body: fields });
  const answer = (await response.json().catch(() => ({}))) as { hostname?: string; status?: string; error?: string };
  if (!response.ok || !answer.hostname || !answer.status) {
    const action =
      response.status === 403
        ? "Pass the workshop's access code with --access-code."
        : response.status === 503
          ? 'Free a VM (or wait for the ones resetting) and check again.'
          : 'See the allocator and form logs.';
    return [line('FAIL', `the form did not give the probe a VM: ${response.status} ${answer.error ?? ''}`.trim(), action)];
  }
  const { hostname, status: statusPath } = answer;
  const lines: CheckLine[] = [];
  try {
    const status = await until(async () => {
      const current = (await (await client.fetch(statusPath)).json()) as AssignmentStatus;
      return current.progress === 'assigned' || current.progress === 'configuring' ? undefined : current;
    }, options);
    lines.push(judgeAnswer(hostname, status, options.timeoutMs));
  } finally {
    await release(client, hostname);
  }
  const back = await until(async () => (await listVms(client)).find((vm) => vm.hostname === hostname && isFree(vm)), options);
  lines.push(
    back
      ? line('PASS', `${hostname} was released, reset by its agent, and is free again`)
      : line(
          'FAIL',
          `${hostname} did not come back free within ${Math.round(options.timeoutMs / 1000)} s of its release`,
          'See its state and log on the dashboard: its reset may have failed.',
        ),
  );
  return lines;
}
