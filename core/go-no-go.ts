/**
 * The go / no-go check of a deployment: the rules that judge what it finds, the probe participant
 * it sends through the form, and where its result is kept for the dashboard.
 */
import { PROBE_CODE_MARKER, SETUP_FAILURE_PREFIX } from '../contract/wire';
import { GOOGLE_REDIRECT_URL, START_HOST_PATH } from './crd-command';

export type CheckStatus = 'PASS' | 'WARN' | 'FAIL';

/** One line of the check: what was checked, what was found and, when it is not a pass, what to do. */
export interface CheckLine {
  status: CheckStatus;
  name: string;
  message: string;
  action?: string;
}

export interface CheckReport {
  go: boolean;
  problems: number;
  lines: CheckLine[];
}

/** What CRD's start-host prints when Google refuses the code (remoting/host/setup/start_host_main.cc). */
export const OAUTH_REFUSAL = "Couldn't start host: OAuth error.";
/** What it prints when it cannot reach Google. */
export const NETWORK_FAILURE = "Couldn't start host: network error.";

/** A well-formed command whose code Google refuses; random so no two probes share a code. */
export function probeCommand(random: string): string {
  return `DISPLAY= ${START_HOST_PATH} --code="4/0${PROBE_CODE_MARKER}${random}" --redirect-url="${GOOGLE_REDIRECT_URL}" --name=$(hostname)`;
}

export function reportOf(lines: CheckLine[]): CheckReport {
  const problems = lines.filter((line) => line.status === 'FAIL').length;
  return { go: problems === 0, problems, lines };
}

export function verdictLine(report: Pick<CheckReport, 'go' | 'problems'>): string {
  return report.go ? 'GO' : `NO-GO (${report.problems} problem${report.problems === 1 ? '' : 's'})`;
}

const pass = (name: string, message: string): CheckLine => ({ status: 'PASS', name, message });
const fail = (name: string, message: string, action: string): CheckLine => ({ status: 'FAIL', name, message, action });
const warn = (name: string, message: string, action: string): CheckLine => ({ status: 'WARN', name, message, action });

/** What the check reads of a VM: the dashboard's row (store/vms.ts's JudgedVm) has all of it. */
export interface JudgedVm {
  hostname: string;
  state: string;
  email: string | null;
  last_seen: string;
  polling: boolean;
  gpu_status: string | null;
  gpu_detail: string | null;
  health_reported_at: string | null;
  unhealthy_since: string | null;
  failed_at: string | null;
  failure: string | null;
  stale: boolean;
  step: string | null;
  reset_requested_at: string | null;
  warm_pool: 'stopped' | 'starting' | null;
}

/** Why one VM cannot take a participant now, with what to do; undefined when it is free and well. */
function vmProblem(vm: JudgedVm): CheckLine | undefined {
  const name = `vm ${vm.hostname}`;
  if (vm.failed_at) {
    const setup = vm.failure?.startsWith(SETUP_FAILURE_PREFIX);
    return fail(
      name,
      vm.failure ?? 'marked failed',
      setup
        ? 'Fix the setup script or check, then "Re-run setup" on the dashboard (its log shows the failing step).'
        : 'See its log on the dashboard; reset it, or let a spare replace it.',
    );
  }
  if (vm.stale)
    return fail(
      name,
      `no heartbeat since ${vm.health_reported_at ?? vm.last_seen}`,
      'Its agent stopped reporting: reboot it (dashboard or EC2), or let the fleet doctor replace it.',
    );
  if (vm.unhealthy_since)
    return fail(
      name,
      `unhealthy since ${vm.unhealthy_since}${vm.gpu_status === 'failed' ? ` (GPU: ${vm.gpu_detail ?? 'failed'})` : ''}`,
      'See its health on the dashboard; reset or replace it.',
    );
  if (vm.email)
    return warn(
      name,
      `has a participant (${vm.email}, ${vm.state})`,
      'Release it before the workshop if nobody should have it yet (dashboard: Release).',
    );
  if (vm.state === 'resetting')
    return warn(name, `resetting since ${vm.reset_requested_at}`, 'Wait a minute and check again; a reset that hangs is marked failed.');
  // Stopped by the warm pool, or starting again: it serves when the running ones are taken.
  if (vm.warm_pool && vm.state === 'waiting') return undefined;
  if (vm.state !== 'waiting' || !vm.polling) {
    return fail(
      name,
      `not ready: ${vm.state}${vm.step ? `, at step ${vm.step}` : ''}${vm.polling ? '' : ', not polling'}`,
      'Wait for its setup to finish and check again; if it stays, see its log on the dashboard.',
    );
  }
  return undefined;
}

/** Every VM registered, healthy, its setup passed, and free: one line per VM that is not, one for the fleet. */
export function judgeVms(vms: JudgedVm[], expected?: number): CheckLine[] {
  if (vms.length === 0)
    return [
      fail(
        'vms',
        'no VM has registered',
        'Check that the fleet was deployed (vmCount) and that the VMs booted: their user-data log, or the rehearsal.',
      ),
    ];
  const lines = vms.map(vmProblem).filter((line): line is CheckLine => line !== undefined);
  const ready = vms.length - lines.length;
  if (expected !== undefined && vms.length < expected) {
    lines.push(
      fail(
        'vms',
        `${vms.length} of ${expected} VMs have registered`,
        'The missing ones did not boot or cannot reach the allocator: see their console output in EC2.',
      ),
    );
  }
  if (ready === 0) lines.push(fail('vms', 'no VM is ready for a participant', 'Fix the problems above.'));
  else if (ready < vms.length) lines.push(pass('vms', `${ready} of ${vms.length} VMs ready`));
  else {
    const warm = vms.filter((vm) => vm.warm_pool).length;
    lines.push(
      pass(
        'vms',
        `all ${vms.length} VM${vms.length === 1 ? '' : 's'} registered, healthy, set up and free${warm ? ` (${warm} stopped by the warm pool until needed)` : ''}`,
      ),
    );
  }
  return lines;
}

const SOON_MINUTES = 4 * 60;

/** The fleet's scheduled stop must lie ahead of the workshop: past fails, within 4 hours warns. */
export function judgeExpiry(expiresAt: string | null, now = Date.now()): CheckLine {
  if (!expiresAt) return pass('expiry', 'no expiresAt: the fleet runs until it is torn down');
  const minutes = Math.round((Date.parse(expiresAt) - now) / 60_000);
  if (minutes <= 0)
    return fail(
      'expiry',
      `expiresAt ${expiresAt} has passed: the fleet was stopped`,
      'Deploy again with -c expiresAt=<a later UTC time>, then check again.',
    );
  const stops = `the fleet stops at ${expiresAt} (in ${Math.floor(minutes / 60)} h ${minutes % 60} min)`;
  // Checked an hour before: a stop a few hours away may fall inside the workshop.
  if (minutes < SOON_MINUTES)
    return warn('expiry', stops, 'If the workshop ends later, deploy again with a later -c expiresAt (the VMs stay as they are).');
  return pass('expiry', stops);
}
