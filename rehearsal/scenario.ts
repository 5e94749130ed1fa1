import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { newAppRole } from '../core/app-role';
import { markFailed, recordHealth, trackUnhealthy } from '../core/health';
import { createLogger } from '../core/log';
import { requestReplacements, spareRegistry } from '../core/replacement';
import { Sql } from '../core/sql';
import { recordPoll } from '../core/vms';
import { agentBundleFile } from '../lib/agent-asset';
import { renderClientUserData, BOOT_LOG_PATH, DESKTOP_USER, AGENT_NODE_VERSION } from '../lib/user-data';
import { startLocalPostgres } from '../local/postgres';
import { startLocalStack } from '../local/stack';
import { FleetInstance, ec2Verifier, startFakeImds } from '../test/support/ec2-identity';
import { CRD_STAND_IN_LOG, emptyAptRepoFiles, writeAptSources } from './apt-repo';
import { Container, bootContainer } from './container';
import { IMDS_ADDRESS } from './netns';
import { Artifact, StandInServer, startStandInServer } from './stand-ins';
import { sleep } from './util';

/** What the outer process prepared on the host. */
export interface RehearsalInputs {
  rootfs: string;
  crdDeb: string;
  nodeTarball: string;
  netnsName: string;
  netnsPath: string;
}

interface Vm {
  name: string;
  instanceId: string;
  /** The logical id CloudFormation would wait on. */
  resource: string;
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
const USER_DATA_PATH = '/var/lib/cloud/lablink-user-data.sh';
const BOOT_TIMEOUT_MS = 10 * 60_000;
const CODE = `4/0AanRJrj${randomBytes(12).toString('hex')}`;
const REDIRECT_URL = 'https://remotedesktop.google.com/_/oauthredirect';

interface Check {
  name: string;
  ok: boolean;
  detail?: string;
}

class Checks {
  readonly all: Check[] = [];

  add(name: string, ok: boolean, detail?: unknown): boolean {
    const text = detail === undefined ? undefined : typeof detail === 'string' ? detail : JSON.stringify(detail);
    this.all.push({ name, ok, detail: text });
    console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${!ok && text ? `\n     ${text.slice(0, 2000)}` : ''}`);
    return ok;
  }
}

async function waitFor<T>(what: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const value = await what().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(500);
  }
  return undefined;
}

/**
 * Boots one VM from the rendered user-data, as EC2 and cloud-init would: a fresh
 * container, the script run once as a system service, downloads pointed at the stand-ins.
 */
async function bootVm(inputs: RehearsalInputs, standIns: StandInServer, userData: string): Promise<{ container: Container; exitCode: number | null }> {
  const container = await bootContainer({
    rootfs: inputs.rootfs,
    netns: { name: inputs.netnsName, path: inputs.netnsPath, remove: () => undefined },
    prepare: async (root) => {
      await writeAptSources(root, standIns.url);
      await mkdir(path.join(root, path.dirname(USER_DATA_PATH)), { recursive: true });
      await writeFile(path.join(root, USER_DATA_PATH), userData, { mode: 0o700 });
    },
  });
  const result = await container.runUnit(['/bin/bash', USER_DATA_PATH], {
    unit: 'lablink-user-data',
    timeoutMs: BOOT_TIMEOUT_MS,
    allowFailure: true,
    env: {
      LABLINK_CRD_PACKAGE_URL: `${standIns.url}/crd/chrome-remote-desktop_current_amd64.deb`,
      LABLINK_NODE_DIST_URL: `${standIns.url}/node`,
      LABLINK_CFN_URL: `${standIns.url}/cloudformation/`,
    },
  });
  return { container, exitCode: result.code };
}

export async function runScenarios(inputs: RehearsalInputs): Promise<number> {
  const checks = new Checks();
  const postgres = await startLocalPostgres();
  const adminSecret = randomBytes(24).toString('hex');
  // The EC2 API cannot run here: DescribeInstances is mocked (aws-sdk-client-mock) over the rehearsal VMs and the spare.
  const fleet: FleetInstance[] = [...[HEALTHY, BROKEN, SETUP_BROKEN].map((vm) => ({ instanceId: vm.instanceId, name: vm.name })), { instanceId: SPARE.instanceId, spare: true }];
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
    for (const [vm, broken] of [[BROKEN, 'install-node'], [SETUP_BROKEN, 'setup-check'], [HEALTHY, undefined], [SPARE, 'spare']] as const) {
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
      console.log(`rehearsal: booting ${broken === 'spare' ? `a spare for ${vm.name}` : vm.name}${broken && broken !== 'spare' ? ` (broken at ${broken})` : ''}`);
      const { container, exitCode } = await bootVm(inputs, standIns, userData);
      try {
        const booted: Booted = { exitCode, standIns, container, allocatorUrl: stack.url, admin };
        if (broken === 'spare') await checkSpareBoot(checks, booted);
        else if (broken) await checkBrokenBoot(checks, vm, broken, exitCode, standIns);
        else await checkHealthyBoot(checks, vm, booted);
      } catch (error) {
        checks.add(`${vm.name}: the rehearsal ran its checks without an unexpected error`, false, String(error));
      } finally {
        if (checks.all.some((check) => !check.ok)) console.log(`--- ${vm.name} boot log ---\n${await container.readFile(BOOT_LOG_PATH).catch(() => '(none)')}`);
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
  return checks.add(`${BROKEN.name}: failed with nobody on it, it gets a replacement (and only it)`, requested.length === 1 && requested[0].hostname === BROKEN.name, requested);
}

async function checkBrokenBoot(checks: Checks, vm: Vm, step: string, exitCode: number | null, standIns: StandInServer): Promise<void> {
  checks.add(`${vm.name}: the boot script broken at ${step} exits with an error`, exitCode !== 0, { exitCode });
  checks.add(
    `${vm.name}: CloudFormation gets one FAILURE signal naming the VM and the step (${vm.name}:${step})`,
    standIns.signals.length === 1 &&
      standIns.signals[0].status === 'FAILURE' &&
      standIns.signals[0].uniqueId === `${vm.name}:${step}` &&
      standIns.signals[0].logicalResourceId === vm.resource &&
      standIns.signals[0].stackName === STACK_NAME &&
      standIns.signals[0].authenticated,
    standIns.signals,
  );
}

/** A VM whose boot script has run, and the allocator it reports to. */
interface Booted {
  exitCode: number | null;
  standIns: StandInServer;
  container: Container;
  allocatorUrl: string;
  admin: Record<string, string>;
}

async function checkHealthyBoot(checks: Checks, vm: Vm, { exitCode, standIns, container, allocatorUrl, admin }: Booted): Promise<void> {
  const booted = checks.add(`${vm.name}: the boot script runs to its end`, exitCode === 0, { exitCode });
  checks.add(
    `${vm.name}: the boot script fetched Chrome Remote Desktop and Node.js from the given locations`,
    standIns.fetched.some((file) => file.startsWith('/crd/')) && standIns.fetched.some((file) => file.startsWith('/node/')),
    standIns.fetched,
  );
  checks.add(`${vm.name}: the agent came from S3 with a request signed by the VM's role (SigV4 checked)`, standIns.signedS3Gets.includes(AGENT_OBJECT_PATH), standIns.fetched);
  checks.add(
    `${vm.name}: CloudFormation gets one SUCCESS signal for this VM, authenticated by its signed identity document`,
    standIns.signals.length === 1 &&
      standIns.signals[0].status === 'SUCCESS' &&
      standIns.signals[0].uniqueId === vm.instanceId &&
      standIns.signals[0].logicalResourceId === vm.resource &&
      standIns.signals[0].stackName === STACK_NAME &&
      standIns.signals[0].authenticated,
    standIns.signals,
  );
  // The rest needs a VM that came up; its boot log is printed below.
  if (!booted) return;
  const agent = await container.exec(['systemctl', 'show', '--property=ActiveState,SubState,ExecMainPID', 'lablink-agent.service'], { allowFailure: true });
  checks.add(`${vm.name}: the agent runs as a systemd service`, /ActiveState=active/.test(agent.stdout) && /SubState=running/.test(agent.stdout), agent.stdout);

  const vms = (await (await fetch(`${allocatorUrl}/api/vms`, { headers: admin })).json()) as { vms: { hostname: string; state: string }[] };
  checks.add(`${vm.name}: the VM registered with the allocator and waits`, vms.vms.some((row) => row.hostname === vm.name && row.state === 'waiting'), vms);

  const response = await requestVm(allocatorUrl, 'participant@example.com', CODE);
  const assignment = (await response.json()) as { hostname?: string; pin?: string };
  checks.add(`${vm.name}: the form assigns this VM`, response.status === 200 && assignment.hostname === vm.name, assignment);

  const record = await startHostRecord(container);
  const desktopUid = Number((await container.exec(['id', '-u', DESKTOP_USER])).stdout.trim());
  checks.add(`${vm.name}: start-host ran as the desktop user ${DESKTOP_USER}, not root`, record !== undefined && record.uid === desktopUid && record.uid !== 0, record);
  checks.add(
    `${vm.name}: start-host got the argv the agent rebuilt (code, redirect URL, the VM's own name)`,
    JSON.stringify(record?.argv) === JSON.stringify([`--code=${CODE}`, `--redirect-url=${REDIRECT_URL}`, `--name=${vm.name}`]),
    record?.argv,
  );
  checks.add(`${vm.name}: start-host got the PIN twice on stdin`, JSON.stringify(record?.stdin) === JSON.stringify([assignment.pin, assignment.pin]) && record?.result === 'registered', record);
  checks.add(`${vm.name}: the desktop user may start its own CRD service through the sudo rule`, record?.sudoExit === 0, record);

  const configured = await waitFor(async () => {
    const list = (await (await fetch(`${allocatorUrl}/api/vms`, { headers: admin })).json()) as { vms: { hostname: string; state: string }[] };
    return list.vms.find((row) => row.hostname === vm.name && row.state === 'configured');
  }, 60_000);
  checks.add(`${vm.name}: the agent reported the VM configured`, configured !== undefined);

  const logs = await waitFor(async () => {
    const view = (await (await fetch(`${allocatorUrl}/api/vms/${vm.name}/logs`, { headers: admin })).json()) as { step: string | null; lines: { source: string; text: string }[] };
    return view.lines.some((line) => line.source === 'boot' && line.text.includes('LABLINK_STEP ready')) ? view : undefined;
  }, 30_000);
  checks.add(
    `${vm.name}: the boot log and the agent's lines reached the allocator, with the boot's last step`,
    logs !== undefined &&
      logs.step === 'ready' &&
      logs.lines.some((line) => line.source === 'boot' && line.text.includes('LABLINK_STEP install-crd')) &&
      logs.lines.some((line) => line.source === 'agent'),
    logs,
  );
  const setupLines = logs?.lines.filter((line) => line.source === 'setup').map((line) => line.text) ?? [];
  checks.add(
    `${vm.name}: the setupScript came from S3 signed by the VM's role, ran as root before the VM joined the pool, and the setupCheck passed as ${DESKTOP_USER}`,
    standIns.signedS3Gets.includes(SETUP_OBJECT_PATH) &&
      setupLines.includes(`workshop setup on ${vm.name}`) &&
      setupLines.includes(`workshop check passed as ${DESKTOP_USER}`) &&
      setupLines.indexOf(`workshop setup on ${vm.name}`) < setupLines.indexOf(`workshop check passed as ${DESKTOP_USER}`),
    { fetched: standIns.signedS3Gets, setupLines },
  );
  checks.add(`${vm.name}: no secret in the shipped log lines`, logs !== undefined && !JSON.stringify(logs).includes(CODE) && !JSON.stringify(logs).includes(`${assignment.pin}`), undefined);

  const token = ['curl', '-sS', '-m', '5', '-X', 'PUT', '-H', 'X-aws-ec2-metadata-token-ttl-seconds: 60', `http://${IMDS_ADDRESS}/latest/api/token`];
  const asParticipant = await container.exec(token, { user: DESKTOP_USER, allowFailure: true });
  const asRoot = await container.exec(token, { allowFailure: true });
  checks.add(`${vm.name}: the desktop user cannot reach the instance metadata service`, asParticipant.code !== 0 && asParticipant.stdout === '', asParticipant);
  checks.add(`${vm.name}: root (the agent) still reaches the instance metadata service`, asRoot.code === 0 && asRoot.stdout.startsWith('imds-token-'), asRoot);
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

/** What the stand-in start-host recorded on its first run in this VM (its argv, stdin and uid). */
async function startHostRecord(container: Container) {
  return waitFor(async () => {
    const line = (await container.readFile(CRD_STAND_IN_LOG)).split('\n').find((text) => text.trim() !== '');
    return line ? (JSON.parse(line) as { uid: number; user: string; argv: string[]; stdin: string[]; result: string; sudoExit: number | null }) : undefined;
  }, 60_000);
}

/** The spare boots from the user-data without a name, takes the failed VM's name from the allocator, and serves a participant under it. */
async function checkSpareBoot(checks: Checks, { exitCode, standIns, container, allocatorUrl, admin }: Booted): Promise<void> {
  const name = SPARE.name;
  const booted = checks.add(`spare: the boot script without a name runs to its end`, exitCode === 0, { exitCode });
  checks.add(`spare: CloudFormation gets no signal (no resource waits for a spare)`, standIns.signals.length === 0, standIns.signals);
  if (!booted) return;
  const hostname = (await container.exec(['hostname'], { allowFailure: true })).stdout.trim();
  const agentEnv = await container.readFile('/etc/lablink/agent.env').catch(() => '');
  checks.add(`spare: it claimed ${name} (POST /vm_name), set it as its hostname and gave it to its agent`, hostname === name && agentEnv.includes(`LABLINK_VM_NAME=${name}\n`), { hostname, agentEnv });

  const vms = (await (await fetch(`${allocatorUrl}/api/vms`, { headers: admin })).json()) as { vms: { hostname: string; state: string; instance_id: string | null }[] };
  const row = vms.vms.find((vm) => vm.hostname === name);
  checks.add(`spare: ${name} is back in the pool, waiting, on the spare's instance`, row?.state === 'waiting' && row.instance_id === SPARE.instanceId, row);

  const response = await requestVm(allocatorUrl, 'second-participant@example.com', `${CODE}x`);
  const assignment = (await response.json()) as { hostname?: string };
  checks.add(`spare: the form assigns ${name} to the next participant`, response.status === 200 && assignment.hostname === name, assignment);
  const record = await startHostRecord(container);
  checks.add(`spare: start-host ran on the spare with --name=${name}`, record?.argv.includes(`--name=${name}`) === true && record.result === 'registered', record);
}
