import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createLogger } from '../core/log';
import { agentBundleFile } from '../lib/agent-asset';
import { AGENT_NODE_VERSION, BOOT_LOG_PATH, DESKTOP_USER, renderClientUserData } from '../lib/user-data';
import { FleetInstance, ec2Verifier, startFakeImds } from '../local/fake-ec2-identity';
import { startLocalPostgres } from '../local/postgres';
import { startLocalStack } from '../local/stack';
import { newAppRole } from '../store/app-role';
import { markFailed, recordHealth, trackUnhealthy } from '../store/health';
import { requestReplacements, spareRegistry } from '../store/replacement';
import { Sql } from '../store/sql';
import { recordPoll } from '../store/vms';
import { CRD_STAND_IN_LOG, emptyAptRepoFiles, writeAptSources } from './apt-repo';
import { Container, bootContainer } from './container';
import { goNoGoPhase } from './go-no-go-phase';
import { hostileParticipant } from './hostile-participant';
import { Booted, Checks, Life, Phase, Vm } from './life';
import { IMDS_ADDRESS } from './netns';
import { Artifact, StandInServer, startStandInServer } from './stand-ins';
import { run, sleep } from './util';

/** What the outer process prepared on the host. */
export interface RehearsalInputs {
  rootfs: string;
  crdDeb: string;
  nodeTarball: string;
  netnsName: string;
  netnsPath: string;
}

const STACK_NAME = 'LabLinkRehearsal';
const HEALTHY: Vm = { name: 'lablink-vm-1', instanceId: 'i-0aaaaaaaaaaaaaaa1', resource: 'FleetVm1Rehearsal' };
const BROKEN: Vm = { name: 'lablink-vm-2', instanceId: 'i-0aaaaaaaaaaaaaaa2', resource: 'FleetVm2Rehearsal' };
const SETUP_BROKEN: Vm = { name: 'lablink-vm-3', instanceId: 'i-0aaaaaaaaaaaaaaa3', resource: 'FleetVm3Rehearsal' };
/** An instance of the spares group: no name and no resource in its user-data; it takes over lablink-vm-2. */
const SPARE: Vm = { name: BROKEN.name, instanceId: 'i-0eeeeeeeeeeeeeee1', resource: '' };
/** Thresholds of zero: the fleet doctor's statements fail a silent VM at once. */
const FAIL_AT_ONCE = { staleSeconds: 0, repairAfterSeconds: 0, maxReboots: 0, cooldownSeconds: 0 };
const AGENT_OBJECT_PATH = '/s3/cdk-assets/agent.js';
/** A small workshop setupScript (an S3 asset like the agent) and setupCheck for the healthy VM. */
const SETUP_OBJECT_PATH = '/s3/cdk-assets/setup.sh';
const SETUP_SCRIPT = 'set -e\necho "workshop setup on $LABLINK_VM_NAME"\necho ready > /etc/lablink-workshop-ready\n';
const SETUP_CHECK = 'test -f /etc/lablink-workshop-ready && echo "workshop check passed as $(id -un)"';
/** The third VM's check fails: its deploy must fail naming the setup's step. */
const FAILING_CHECK = 'echo "No module named sleap" >&2; exit 1';
const BOOT_TIMEOUT_MS = 10 * 60_000;
const CODE = `4/0AanRJrj${randomBytes(12).toString('hex')}`;
const REDIRECT_URL = 'https://remotedesktop.google.com/_/oauthredirect';

async function waitFor<T>(what: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const value = await what().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(500);
  }
  return undefined;
}

/** Where cloud-init's NoCloud datasource finds the instance's metadata and user-data (EC2's own datasource is not here). */
const NOCLOUD_SEED_DIR = '/var/lib/cloud/seed/nocloud';
/** The rehearsal's only change to the boot script's run: where it downloads from and signals to, as the environment of cloud-final (which runs it). */
const CLOUD_FINAL_DROP_IN = '/etc/systemd/system/cloud-final.service.d/lablink-rehearsal.conf';
const CLOUD_INIT_LOG = '/var/log/cloud-init.log';
/** The line systemd starts each boot's console output with. */
const SYSTEMD_BANNER = 'running in system mode';
/** cloud-init's summary of its last boot's stages, rewritten on every boot. */
const CLOUD_INIT_RESULT = '/var/lib/cloud/data/result.json';
/** The NIC's address (netns.ts, rootfs.ts): the name EC2's metadata gives before the boot script renames the VM. */
const EC2_HOSTNAME = 'ip-10-10-0-2';

/**
 * Boots one VM from the rendered user-data as EC2 does: a fresh disk, the user-data in
 * cloud-init's seed, and cloud-init (cloud-final) runs it once for this instance; the boot
 * ends when systemd has nothing left to start, so when the script has ended.
 */
async function bootVm(
  inputs: RehearsalInputs,
  standIns: StandInServer,
  vm: Vm,
  userData: string,
): Promise<{ container: Container; exitCode: number | null }> {
  const container = await bootContainer({
    rootfs: inputs.rootfs,
    netns: { name: inputs.netnsName, path: inputs.netnsPath, remove: () => undefined },
    bootTimeoutMs: BOOT_TIMEOUT_MS,
    prepare: async (root) => {
      await writeAptSources(root, standIns.url);
      const seed = path.join(root, NOCLOUD_SEED_DIR);
      await mkdir(seed, { recursive: true });
      await writeFile(path.join(seed, 'meta-data'), `instance-id: ${vm.instanceId}\nlocal-hostname: ${EC2_HOSTNAME}\n`);
      await writeFile(path.join(seed, 'user-data'), userData, { mode: 0o600 });
      const environment = {
        LABLINK_CRD_PACKAGE_URL: `${standIns.url}/crd/chrome-remote-desktop_current_amd64.deb`,
        LABLINK_NODE_DIST_URL: `${standIns.url}/node`,
        LABLINK_CFN_URL: `${standIns.url}/cloudformation/`,
      };
      await mkdir(path.join(root, path.dirname(CLOUD_FINAL_DROP_IN)), { recursive: true });
      await writeFile(
        path.join(root, CLOUD_FINAL_DROP_IN),
        `[Service]\n${Object.entries(environment)
          .map(([name, value]) => `Environment=${name}=${value}\n`)
          .join('')}`,
      );
    },
  });
  return { container, exitCode: await userDataExitCode(container) };
}

/** What cloud-init says of its run of this boot: the errors of its modules (the boot script's included). */
async function cloudInitErrors(container: Container): Promise<string[]> {
  await container.exec(['cloud-init', 'status', '--wait'], { allowFailure: true, timeoutMs: BOOT_TIMEOUT_MS });
  return (JSON.parse(await container.readFile(CLOUD_INIT_RESULT)) as { v1: { errors: string[] } }).v1.errors;
}

/**
 * The boot script's exit status as cloud-init saw it: 0 when its final stage reported no error
 * of the scripts-user module (which runs it), else the code its runparts logged for the script.
 */
async function userDataExitCode(container: Container): Promise<number | null> {
  const errors = await cloudInitErrors(container).catch(() => ['no result.json']);
  if (!errors.some((error) => /scripts[-_]user|result\.json/.test(error))) return 0;
  const failed = /Command: \['[^']*\/scripts\/[^']*'\]\s+Exit code: (\d+)/.exec(await container.readFile(CLOUD_INIT_LOG).catch(() => ''));
  return failed ? Number(failed[1]) : null;
}

export async function runScenarios(inputs: RehearsalInputs): Promise<number> {
  const checks = new Checks();
  const postgres = await startLocalPostgres();
  const adminSecret = randomBytes(24).toString('hex');
  // The EC2 API cannot run here: DescribeInstances is mocked (aws-sdk-client-mock) over the rehearsal VMs and the spare.
  const fleet: FleetInstance[] = [
    ...[HEALTHY, BROKEN, SETUP_BROKEN].map((vm) => ({ instanceId: vm.instanceId, name: vm.name })),
    { instanceId: SPARE.instanceId, spare: true },
  ];
  const { verifier } = ec2Verifier(fleet, undefined, {
    nameOf: (instanceId) => spareRegistry(stack.sql).nameOf(instanceId),
    holderOf: (hostname) => spareRegistry(stack.sql).holderOf(hostname),
  });
  const stack = await startLocalStack({
    databaseUrl: postgres.url,
    fleetToken: randomBytes(24).toString('hex'),
    identity: verifier,
    adminSecret,
    appRole: newAppRole(),
    holdSeconds: 10,
    log: createLogger('text'),
  });
  const admin = { authorization: `Basic ${Buffer.from(`admin:${adminSecret}`).toString('base64')}` };
  const closers: (() => Promise<void>)[] = [() => postgres.stop(), () => stack.close()];
  // The same bundle file the CDK asset uploads, served like an S3 object only to a request signed with the VM's role.
  const agent = agentBundleFile();
  try {
    for (const [vm, broken] of [
      [BROKEN, 'install-node'],
      [SETUP_BROKEN, 'setup-check'],
      [HEALTHY, undefined],
      [SPARE, 'spare'],
    ] as const) {
      if (broken === 'spare' && !(await requestSpare(checks, stack.sql, fleet))) break;
      const imds = await startFakeImds(vm.instanceId, { host: IMDS_ADDRESS, port: 80 });
      const artifacts: Record<string, Artifact> = {
        '/crd/chrome-remote-desktop_current_amd64.deb': { file: inputs.crdDeb },
        [AGENT_OBJECT_PATH]: { file: agent.file, s3: true },
        [SETUP_OBJECT_PATH]: { body: SETUP_SCRIPT, s3: true },
        [`/node/${AGENT_NODE_VERSION}/node-${AGENT_NODE_VERSION}-linux-x64.tar.xz`]: { file: inputs.nodeTarball },
        ...Object.fromEntries(Object.entries(emptyAptRepoFiles()).map(([file, body]) => [file, { body }])),
      };
      const standIns = await startStandInServer(artifacts, imds.document);
      let userData = renderClientUserData({
        // A spare's boot script is the same without a name and without a resource to signal.
        ...(broken === 'spare' ? {} : { vmName: vm.name, stackName: STACK_NAME, signalResource: vm.resource }),
        allocatorUrl: stack.url,
        agentUrl: `${standIns.url}${AGENT_OBJECT_PATH}`,
        agentSha256: agent.sha256,
        setup: {
          script: { url: `${standIns.url}${SETUP_OBJECT_PATH}`, sha256: createHash('sha256').update(SETUP_SCRIPT).digest('hex') },
          check: broken === 'setup-check' ? FAILING_CHECK : SETUP_CHECK,
        },
      });
      // A boot script broken on one line: the deploy must fail and say where.
      if (broken === 'install-node') userData = userData.replace('\nstep install-node\n', '\nstep install-node\nfalse\n');
      console.log(
        `rehearsal: booting ${broken === 'spare' ? `a spare for ${vm.name}` : vm.name}${broken && broken !== 'spare' ? ` (broken at ${broken})` : ''}`,
      );
      const { container, exitCode } = await bootVm(inputs, standIns, vm, userData);
      try {
        const booted: Booted = {
          rootfs: inputs.rootfs,
          imds,
          exitCode,
          standIns,
          container,
          allocatorUrl: stack.url,
          admin,
          adminSecret,
          sql: stack.sql,
        };
        if (broken === 'spare') await checkSpareBoot(checks, booted);
        else if (broken) await checkBrokenBoot(checks, vm, broken, exitCode, standIns);
        else await checkHealthyLife(checks, vm, booted);
      } catch (error) {
        checks.add(`${vm.name}: the rehearsal ran its checks without an unexpected error`, false, String(error));
      } finally {
        if (checks.all.some((check) => !check.ok))
          console.log(`--- ${vm.name} boot log ---\n${await container.readFile(BOOT_LOG_PATH).catch(() => '(none)')}`);
        await container.stop();
        await standIns.close();
        await imds.close();
      }
    }
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  }
  const failed = checks.all.filter((check) => !check.ok).length;
  console.log(`rehearsal: ${checks.all.length - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

/**
 * lablink-vm-2 (whose boot broke) fails the way the fleet doctor sees it, registered, one
 * heartbeat and then silence, and the doctor's own statements ask for a replacement; the mocked EC2 API then shows
 * its instance tagged replaced, as the allocator tags it in AWS.
 */
async function requestSpare(checks: Checks, sql: Sql, fleet: FleetInstance[]): Promise<boolean> {
  await recordPoll(sql, BROKEN.name, 0, BROKEN.instanceId);
  await recordHealth(sql, BROKEN.name, { heartbeat: {} });
  await trackUnhealthy(sql, FAIL_AT_ONCE);
  await markFailed(sql, FAIL_AT_ONCE);
  const requested = await requestReplacements(sql, 2);
  fleet.find((instance) => instance.instanceId === BROKEN.instanceId)!.replaced = true;
  return checks.add(
    `${BROKEN.name}: failed with nobody on it, it gets a replacement (and only it)`,
    requested.length === 1 && requested[0].hostname === BROKEN.name,
    requested,
  );
}

async function checkBrokenBoot(checks: Checks, vm: Vm, step: string, exitCode: number | null, standIns: StandInServer): Promise<void> {
  checks.add(`${vm.name}: the boot script broken at ${step} exits with an error`, exitCode !== null && exitCode !== 0, { exitCode });
  checks.add(
    `${vm.name}: CloudFormation gets one FAILURE signal shaped as cfn-signal's, naming the VM and the step (${vm.name}:${step})`,
    standIns.refusedSignals.length === 0 &&
      standIns.signals.length === 1 &&
      standIns.signals[0].status === 'FAILURE' &&
      standIns.signals[0].uniqueId === `${vm.name}:${step}` &&
      standIns.signals[0].logicalResourceId === vm.resource &&
      standIns.signals[0].stackName === STACK_NAME &&
      standIns.signals[0].authenticated,
    { signals: standIns.signals, refused: standIns.refusedSignals },
  );
}

/**
 * The healthy VM's life, one phase a line: booted, used, taken back, rebooted, used, taken
 * back, stopped and started, used. A new phase (another participant's doings) is one line here.
 */
const HEALTHY_LIFE: readonly Phase[] = [
  firstBoot,
  serveParticipant,
  shippedLogsAndSetup,
  (life) => hostileParticipant(life.booted.container, life.booted.allocatorUrl, life.booted.admin, life.checks),
  releaseAndReset,
  (life) => goNoGoPhase(life, SETUP_BROKEN.name),
  repairReboot,
  serveParticipant,
  releaseAndReset,
  stopAndStart,
  serveParticipant,
];

async function checkHealthyLife(checks: Checks, vm: Vm, booted: Booted): Promise<void> {
  const life: Life = { checks, vm, booted, boot: 'first boot', participants: 0, secrets: [] };
  const earlier = checks.all.length;
  for (const phase of HEALTHY_LIFE) {
    // Each phase needs the VM the phases before it left; its boot log is printed below.
    if (checks.all.slice(earlier).some((check) => !check.ok)) return;
    await phase(life);
  }
}

/** A check named after the VM and its boot. */
function check(life: Life, name: string, ok: boolean, detail?: unknown): boolean {
  return life.checks.add(`${life.vm.name} (${life.boot}): ${name}`, ok, detail);
}

/** The first boot's script, run by cloud-init: it ends well, and CloudFormation hears of it once. */
async function firstBoot(life: Life): Promise<void> {
  const { exitCode, standIns } = life.booted;
  const { vm } = life;
  const ran = check(life, 'cloud-init ran the boot script (NoCloud seed, cloud-final) to its end', exitCode === 0, {
    exitCode,
    cloudInitLog:
      exitCode === 0
        ? undefined
        : await life.booted.container
            .readFile(CLOUD_INIT_LOG)
            .catch(() => '')
            .then((log) => log.slice(-3000)),
  });
  const errors = await cloudInitErrors(life.booted.container).catch((error: unknown) => [String(error)]);
  check(life, 'cloud-init reported no error in any of its stages', errors.length === 0, errors);
  if (!ran) return;
  check(
    life,
    'the boot script fetched Chrome Remote Desktop and Node.js from the given locations',
    standIns.fetched.some((file) => file.startsWith('/crd/')) && standIns.fetched.some((file) => file.startsWith('/node/')),
    standIns.fetched,
  );
  check(
    life,
    "the agent came from S3 with a request signed by the VM's role (SigV4 checked)",
    standIns.signedS3Gets.includes(AGENT_OBJECT_PATH),
    standIns.fetched,
  );
  check(
    life,
    "CloudFormation gets one SUCCESS signal for this VM, shaped as cfn-signal's and authenticated by its signed identity document",
    standIns.refusedSignals.length === 0 &&
      standIns.signals.length === 1 &&
      standIns.signals[0].status === 'SUCCESS' &&
      standIns.signals[0].uniqueId === vm.instanceId &&
      standIns.signals[0].logicalResourceId === vm.resource &&
      standIns.signals[0].stackName === STACK_NAME &&
      standIns.signals[0].authenticated,
    { signals: standIns.signals, refused: standIns.refusedSignals },
  );
  await checkBootedVm(life);
}

/** What must hold after every boot: the guard, no ordering cycle, the agent, the name, a free VM. */
async function checkBootedVm(life: Life): Promise<void> {
  const { container } = life.booted;
  const { vm } = life;
  // systemd reports a cycle while it plans the boot, before journald runs: in a container (no
  // kernel log to replay) that reaches only the console, so both are read.
  const journal = await container.exec(['journalctl', '-b', '--no-pager', '-o', 'cat'], { allowFailure: true });
  const consoleOutput = await readFile(container.consoleLog, 'utf8');
  const thisBoot = consoleOutput.slice(consoleOutput.lastIndexOf(SYSTEMD_BANNER));
  const cycles = `${journal.stdout}\n${thisBoot}`.split('\n').filter((line) => /ordering cycle|Found dependency/i.test(line));
  check(
    life,
    "this boot's journal and console show no ordering cycle",
    journal.code === 0 && cycles.length === 0,
    cycles.length > 0 ? cycles : journal.stderr,
  );

  const agent = await container.exec(['systemctl', 'show', '--property=ActiveState,SubState', 'lablink-agent.service'], {
    allowFailure: true,
  });
  check(
    life,
    'the agent runs as a systemd service',
    /ActiveState=active/.test(agent.stdout) && /SubState=running/.test(agent.stdout),
    agent.stdout,
  );
  const hostname = (await container.exec(['hostname'], { allowFailure: true })).stdout.trim();
  check(life, `the VM is still called ${vm.name} (cloud-init keeps the name the boot script gave it)`, hostname === vm.name, hostname);

  const waiting = await vmInState(life, 'waiting', 120_000);
  check(life, 'the VM is registered with the allocator and waits for a participant', waiting !== undefined);

  const token = [
    'curl',
    '-sS',
    '-m',
    '5',
    '-X',
    'PUT',
    '-H',
    'X-aws-ec2-metadata-token-ttl-seconds: 60',
    `http://${IMDS_ADDRESS}/latest/api/token`,
  ];
  const asParticipant = await container.exec(token, { user: DESKTOP_USER, allowFailure: true });
  const asRoot = await container.exec(token, { allowFailure: true });
  check(
    life,
    'the desktop user cannot reach the instance metadata service',
    asParticipant.code !== 0 && asParticipant.stdout === '',
    asParticipant,
  );
  check(
    life,
    'root (the agent) still reaches the instance metadata service',
    asRoot.code === 0 && asRoot.stdout.startsWith('imds-token-'),
    asRoot,
  );
}

/** Checks after a boot of a disk that has booted before: the guard came first, and cloud-init left the user-data alone. */
async function checkBootAgain(life: Life): Promise<void> {
  const { container, standIns } = life.booted;
  const units = ['lablink-metadata-guard.service', 'network-pre.target', 'systemd-networkd.service'];
  const shown = await container.exec(
    ['systemctl', 'show', '--property=Id,ActiveState,ActiveEnterTimestampMonotonic,InactiveExitTimestampMonotonic', ...units],
    { allowFailure: true },
  );
  const unit = (id: string) =>
    Object.fromEntries(
      shown.stdout
        .split('\n\n')
        .find((block) => block.includes(`Id=${id}`))
        ?.split('\n')
        .map((line) => line.split('=', 2)) ?? [],
    );
  const [guard, networkPre, networkd] = units.map(unit);
  const guardUp = Number(guard.ActiveEnterTimestampMonotonic);
  check(
    life,
    "the metadata guard's firewall rule was in force before the network came up (before network-pre.target and systemd-networkd)",
    guard.ActiveState === 'active' &&
      networkPre.ActiveState === 'active' &&
      networkd.ActiveState === 'active' &&
      guardUp > 0 &&
      guardUp <= Number(networkPre.ActiveEnterTimestampMonotonic) &&
      guardUp <= Number(networkd.InactiveExitTimestampMonotonic),
    { guard, networkPre, networkd },
  );
  const bootLog = await container.readFile(BOOT_LOG_PATH).catch(() => '');
  const errors = await cloudInitErrors(container).catch((error: unknown) => [String(error)]);
  const runs = bootLog.split('\n').filter((line) => line === 'LABLINK_STEP install-desktop').length;
  check(
    life,
    'cloud-init finished this boot without an error and without running the user-data again (once per instance)',
    errors.length === 0 && runs === 1 && standIns.signals.length === 1,
    { errors, runs, signals: standIns.signals.length },
  );
  await checkBootedVm(life);
}

/** The VM's row in GET /api/vms once it is in that state, or undefined after timeoutMs. */
async function vmInState(life: Life, state: string, timeoutMs: number) {
  const { allocatorUrl, admin } = life.booted;
  return waitFor(async () => {
    const list = (await (await fetch(`${allocatorUrl}/api/vms`, { headers: admin })).json()) as {
      vms: { hostname: string; state: string }[];
    };
    return list.vms.find((row) => row.hostname === life.vm.name && row.state === state);
  }, timeoutMs);
}

/** A participant asks with the form: the VM is assigned, and start-host runs as the desktop user with their code and PIN. */
async function serveParticipant(life: Life): Promise<void> {
  const { container, allocatorUrl } = life.booted;
  const { vm } = life;
  life.participants += 1;
  const code = participantCode(life.participants);
  const response = await requestVm(allocatorUrl, `participant-${life.participants}@example.com`, code);
  const assignment = (await response.json()) as { hostname?: string; pin?: string };
  life.secrets.push(code, `${assignment.pin}`);
  check(
    life,
    `the form assigns this VM to participant ${life.participants}`,
    response.status === 200 && assignment.hostname === vm.name,
    assignment,
  );

  const record = await startHostRecord(container, code);
  const desktopUid = Number((await container.exec(['id', '-u', DESKTOP_USER])).stdout.trim());
  check(
    life,
    `start-host ran as the desktop user ${DESKTOP_USER}, not root`,
    record !== undefined && record.uid === desktopUid && record.uid !== 0,
    record,
  );
  check(
    life,
    "start-host got the argv the agent rebuilt (this participant's code, redirect URL, the VM's own name)",
    JSON.stringify(record?.argv) === JSON.stringify([`--code=${code}`, `--redirect-url=${REDIRECT_URL}`, `--name=${vm.name}`]),
    record?.argv,
  );
  check(
    life,
    'start-host got the PIN twice on stdin',
    JSON.stringify(record?.stdin) === JSON.stringify([assignment.pin, assignment.pin]) && record?.result === 'registered',
    record,
  );
  check(life, 'the desktop user may start its own CRD service through the sudo rule', record?.sudoExit === 0, record);

  const configured = await vmInState(life, 'configured', 60_000);
  check(life, 'the agent reported the VM configured', configured !== undefined);
}

/** The boot log, the agent's lines and the setup's reached the allocator, without a secret. */
async function shippedLogsAndSetup(life: Life): Promise<void> {
  const { standIns, allocatorUrl, admin } = life.booted;
  const { vm } = life;
  const logs = await waitFor(async () => {
    const view = (await (await fetch(`${allocatorUrl}/api/vms/${vm.name}/logs`, { headers: admin })).json()) as {
      step: string | null;
      lines: { source: string; text: string }[];
    };
    return view.lines.some((line) => line.source === 'boot' && line.text.includes('LABLINK_STEP ready')) ? view : undefined;
  }, 30_000);
  check(
    life,
    "the boot log and the agent's lines reached the allocator, with the boot's last step",
    logs !== undefined &&
      // The boot's `ready` line and the agent's own `waiting` (said as its setup passes) race to be the last step; both mean booted.
      (logs.step === 'ready' || logs.step === 'waiting') &&
      logs.lines.some((line) => line.source === 'boot' && line.text.includes('LABLINK_STEP install-crd')) &&
      logs.lines.some((line) => line.source === 'agent'),
    logs,
  );
  const setupLines = logs?.lines.filter((line) => line.source === 'setup').map((line) => line.text) ?? [];
  check(
    life,
    `the setupScript came from S3 signed by the VM's role, ran as root before the VM joined the pool, and the setupCheck passed as ${DESKTOP_USER}`,
    standIns.signedS3Gets.includes(SETUP_OBJECT_PATH) &&
      setupLines.includes(`workshop setup on ${vm.name}`) &&
      setupLines.includes(`workshop check passed as ${DESKTOP_USER}`) &&
      setupLines.indexOf(`workshop setup on ${vm.name}`) < setupLines.indexOf(`workshop check passed as ${DESKTOP_USER}`),
    { fetched: standIns.signedS3Gets, setupLines },
  );
  const shipped = JSON.stringify(logs ?? '');
  check(
    life,
    'no secret in the shipped log lines',
    logs !== undefined && !life.secrets.some((secret) => shipped.includes(secret)),
    undefined,
  );
}

/** The admin takes the VM back (POST /api/vms/<name>/release): its agent resets it and it waits for the next participant. */
async function releaseAndReset(life: Life): Promise<void> {
  const { allocatorUrl, admin } = life.booted;
  const { vm } = life;
  const response = await fetch(`${allocatorUrl}/api/vms/${vm.name}/release`, {
    method: 'POST',
    headers: { ...admin, accept: 'application/json' },
  });
  const body = (await response.json()) as { state?: string };
  check(life, `the admin releases participant ${life.participants}'s VM`, response.status === 200 && body.state === 'resetting', body);
  const waiting = await vmInState(life, 'waiting', 180_000);
  check(life, 'its agent reset it and it waits again', waiting !== undefined);
}

/** A repair reboot (EC2's RebootInstances): the OS reboots itself; the same disk boots, /run is empty. */
async function repairReboot(life: Life): Promise<void> {
  life.boot = 'repair reboot';
  console.log(`rehearsal: rebooting ${life.vm.name}`);
  await life.booted.container.restart('reboot', { timeoutMs: 120_000, whileDown: () => freshKernelFirewall(life.booted.rootfs) });
  await checkBootAgain(life);
}

/** The warm pool's path (EC2's StopInstances, then StartInstances): a poweroff, then a new boot of the same disk. */
async function stopAndStart(life: Life): Promise<void> {
  life.boot = 'stop and start';
  console.log(`rehearsal: stopping and starting ${life.vm.name}`);
  await life.booted.container.restart('stop-start', {
    timeoutMs: 120_000,
    whileDown: async () => {
      await freshKernelFirewall(life.booted.rootfs);
      life.booted.imds.started();
    },
  });
  await checkBootAgain(life);
}

/**
 * A VM's next boot starts with a kernel whose firewall is empty; the rehearsal's network namespace
 * outlives the container, so its rules are flushed while the VM is down (with the rootfs's own
 * iptables: this process runs inside that namespace). Only the guard may bring the rule back.
 */
async function freshKernelFirewall(rootfs: string): Promise<void> {
  await run('chroot', [rootfs, 'iptables', '-F', 'OUTPUT'], { timeoutMs: 10_000 });
}

/** Participant n's code from remotedesktop.google.com/headless: single-use, so a new one each time. */
function participantCode(n: number): string {
  return `${CODE}${n}`;
}

/** The participant form's request, with the command remotedesktop.google.com/headless shows. */
async function requestVm(allocatorUrl: string, email: string, code: string): Promise<Response> {
  return fetch(`${allocatorUrl}/api/request_vm`, {
    method: 'POST',
    headers: { accept: 'application/json' },
    body: new URLSearchParams({
      email,
      crd_command: `DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="${code}" --redirect-url="${REDIRECT_URL}" --name=$(hostname)`,
    }),
  });
}

/** What the stand-in start-host recorded when it ran with this code in this VM (its argv, stdin and uid). */
async function startHostRecord(container: Container, code: string) {
  return waitFor(async () => {
    const line = (await container.readFile(CRD_STAND_IN_LOG)).split('\n').find((text) => text.includes(`"--code=${code}"`));
    return line
      ? (JSON.parse(line) as { uid: number; user: string; argv: string[]; stdin: string[]; result: string; sudoExit: number | null })
      : undefined;
  }, 60_000);
}

/** The spare boots from the user-data without a name, takes the failed VM's name from the allocator, and serves a participant under it. */
async function checkSpareBoot(checks: Checks, { exitCode, standIns, container, allocatorUrl, admin }: Booted): Promise<void> {
  const name = SPARE.name;
  const booted = checks.add(`spare: the boot script without a name runs to its end`, exitCode === 0, { exitCode });
  checks.add(
    `spare: CloudFormation gets no signal (no resource waits for a spare)`,
    standIns.signals.length === 0 && standIns.refusedSignals.length === 0,
    { signals: standIns.signals, refused: standIns.refusedSignals },
  );
  if (!booted) return;
  const hostname = (await container.exec(['hostname'], { allowFailure: true })).stdout.trim();
  const agentEnv = await container.readFile('/etc/lablink/agent.env').catch(() => '');
  checks.add(
    `spare: it claimed ${name} (POST /vm_name), set it as its hostname and gave it to its agent`,
    hostname === name && agentEnv.includes(`LABLINK_VM_NAME=${name}\n`),
    { hostname, agentEnv },
  );

  const vms = (await (await fetch(`${allocatorUrl}/api/vms`, { headers: admin })).json()) as {
    vms: { hostname: string; state: string; instance_id: string | null }[];
  };
  const row = vms.vms.find((vm) => vm.hostname === name);
  checks.add(
    `spare: ${name} is back in the pool, waiting, on the spare's instance`,
    row?.state === 'waiting' && row.instance_id === SPARE.instanceId,
    row,
  );

  const code = `${CODE}x`;
  const response = await requestVm(allocatorUrl, 'second-participant@example.com', code);
  const assignment = (await response.json()) as { hostname?: string };
  checks.add(
    `spare: the form assigns ${name} to the next participant`,
    response.status === 200 && assignment.hostname === name,
    assignment,
  );
  const record = await startHostRecord(container, code);
  checks.add(
    `spare: start-host ran on the spare with --name=${name}`,
    record?.argv.includes(`--name=${name}`) === true && record.result === 'registered',
    record,
  );
}
