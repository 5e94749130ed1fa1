/**
 * The go / no-go check in the boot rehearsal: `npm run check -- --url` run as an instructor runs
 * it, against the rehearsal's allocator, while the healthy VM waits free. Its probe participant goes
 * through the form, the VM's real agent and the stand-in start-host, which refuses the probe's code
 * as Google does (apt-repo.ts).
 */
import path from 'node:path';
import { isFree } from '../check/probe';
import { formatReport } from '../check/report';
import { PROBE_EMAIL, SETUP_FAILURE_PREFIX } from '../contract/wire';
import { CheckReport, OAUTH_REFUSAL } from '../core/go-no-go';
import { retireVm } from '../store/health';
import type { VmSummary } from '../store/vms';
import type { Life } from './life';
import { run } from './util';

const REPO_ROOT = path.join(__dirname, '..');
/** The probe waits this long for start-host's answer, then as long for the reset. */
const PROBE_TIMEOUT_SECONDS = 180;

/** The check's CLI as a child of this process, so inside the rehearsal's network namespace. */
async function runCheck(life: Life): Promise<{ exitCode: number | null; report?: CheckReport; stderr: string }> {
  const { allocatorUrl, adminSecret } = life.booted;
  const args = [
    '--import',
    'tsx',
    path.join(REPO_ROOT, 'bin/check.ts'),
    '--url',
    allocatorUrl,
    '--probe-timeout',
    String(PROBE_TIMEOUT_SECONDS),
    '--json',
  ];
  const result = await run(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, LABLINK_ADMIN_SECRET: adminSecret },
    timeoutMs: (2 * PROBE_TIMEOUT_SECONDS + 60) * 1000,
    allowFailure: true,
  });
  const report = result.stdout ? (JSON.parse(result.stdout) as CheckReport) : undefined;
  if (report) console.log(formatReport(report).replace(/^/gm, '    check: '));
  return { exitCode: result.code, report, stderr: result.stderr };
}

const probePassed = (report: CheckReport | undefined) => {
  const probe = report?.lines.filter((line) => line.name === 'probe') ?? [];
  return probe.length === 2 && probe.every((line) => line.status === 'PASS');
};

/**
 * (a) With lablink-vm-3 registered and its setup check failed, the check says NO-GO and names it
 * and its setup; (b) once the fleet is the healthy VM alone, GO. Between the two, lablink-vm-3 is
 * retired as the fleet doctor retires a VM whose instance is gone: its container was stopped after
 * its boot's checks, as an instructor terminates an instance whose setup is broken. Each run's probe
 * goes through this VM, which is free again after, and no probe shows in the assignments' CSV.
 */
export async function goNoGoPhase(life: Life, setupBroken: string): Promise<void> {
  const { allocatorUrl, admin, container, sql } = life.booted;
  const name = (text: string) => `${life.vm.name} (${life.boot}): go / no-go: ${text}`;

  const withBroken = await runCheck(life);
  const setupLine = withBroken.report?.lines.find((line) => line.name === `vm ${setupBroken}`);
  life.checks.add(
    name(`with ${setupBroken}'s setup check failed, npm run check says NO-GO (exit 1) and names ${setupBroken} and its setup`),
    withBroken.exitCode === 1 &&
      withBroken.report?.go === false &&
      setupLine?.status === 'FAIL' &&
      setupLine.message.startsWith(SETUP_FAILURE_PREFIX),
    withBroken.report ?? withBroken.stderr,
  );
  life.checks.add(
    name(`its probe still went through ${life.vm.name}: refused as Google refuses it, the VM released, reset and free`),
    probePassed(withBroken.report),
    withBroken.report?.lines,
  );

  await retireVm(sql, setupBroken);
  const healthyOnly = await runCheck(life);
  life.checks.add(
    name(`with the fleet just ${life.vm.name}, npm run check says GO (exit 0), its probe refused as Google refuses it`),
    healthyOnly.exitCode === 0 && healthyOnly.report?.go === true && probePassed(healthyOnly.report),
    healthyOnly.report ?? healthyOnly.stderr,
  );

  // start-host's own record is gone with the desktop account each reset sweeps: the agent's journal keeps what it answered.
  const journal = await container.exec(['journalctl', '-b', '-u', 'lablink-agent.service', '--no-pager', '-o', 'cat'], {
    allowFailure: true,
  });
  const probeAnswers = journal.stdout
    .split('\n')
    .filter((text) => text.includes('"agent.start_host_done"') && text.includes('"probe":true'));
  life.checks.add(
    name("the VM's agent ran start-host for each probe and logged the stand-in's refusal as expected, not as an error"),
    probeAnswers.length === 2 && probeAnswers.every((text) => text.includes(OAUTH_REFUSAL) && text.includes('"level":"info"')),
    probeAnswers.length > 0 ? probeAnswers : journal.stderr,
  );

  const vms = ((await (await fetch(`${allocatorUrl}/api/vms`, { headers: admin })).json()) as { vms: VmSummary[] }).vms;
  const vm = vms.find((row) => row.hostname === life.vm.name);
  life.checks.add(name(`${life.vm.name} is free for the next participant after the probes`), vm !== undefined && isFree(vm), vm);
  const csv = await (await fetch(`${allocatorUrl}/api/vms.csv`, { headers: admin })).text();
  life.checks.add(
    name(`the probe (${PROBE_EMAIL}) is not in the assignments' CSV`),
    csv.includes('participant-1@example.com') && !csv.includes(PROBE_EMAIL),
    csv,
  );
}
