import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildAgentBundle } from '../../agent/bundle';
import { readAgentConfig } from '../../agent/agent-config';
import { agentBundleFile } from '../../lib/agent-asset';
import { startHostInvocation } from '../../agent/start-host';
import { EC2_USER_DATA_LIMIT_BYTES, SETUP_RESULT_PATH, SETUP_SCRIPT_PATH, renderClientUserData } from '../../lib/user-data';
import { startStandInServer } from '../../rehearsal/stand-ins';
import { startFakeImds } from '../../local/fake-ec2-identity';

const VM_7 = {
  vmName: 'lablink-vm-7',
  allocatorUrl: 'http://internal-LabLink-Alloc-0123456789.eu-west-1.elb.amazonaws.com',
  agentUrl: 'https://cdk-hnb659fds-assets-123456789012-eu-west-1.s3.eu-west-1.amazonaws.com/0123abcd.js',
  agentSha256: agentBundleFile().sha256,
  stackName: 'LabLink',
  signalResource: 'FleetVm7ABCDEF12',
};

describe('client VM user-data', () => {
  const script = renderClientUserData(VM_7);

  it('is valid bash and fits EC2’s limit', () => {
    expect(() => execFileSync('bash', ['-n'], { input: script })).not.toThrow();
    expect(Buffer.byteLength(script)).toBeLessThan(EC2_USER_DATA_LIMIT_BYTES);
  });

  it('downloads the agent with the VM’s role and refuses any file but the minified bundle', () => {
    const { file, sha256 } = agentBundleFile();
    expect(readFileSync(file, 'utf8')).toBe(buildAgentBundle({ minify: true }));
    expect(sha256).toBe(
      createHash('sha256')
        .update(buildAgentBundle({ minify: true }))
        .digest('hex'),
    );
    expect(script).toContain(`AGENT_SHA256='${sha256}'`);
    expect(script).toMatch(
      /retry 10 s3_get "\$AGENT_URL" \/opt\/lablink\/agent.js\necho "\$AGENT_SHA256 {2}\/opt\/lablink\/agent.js" \| sha256sum --check/,
    );
  });

  it('hands the role’s credentials to curl in a root-only file, never on a command line the log or ps could show', () => {
    expect(script).toContain('printf \'user = "%s:%s"');
    expect(script).toMatch(/curl [^\n]*--aws-sigv4 "aws:amz:[^"]*:s3" -K "\$config"/);
    expect(script).not.toMatch(/curl [^\n]*(-u|--user) /);
  });

  it('runs the agent as a root service that starts CRD as the desktop user and proves itself with EC2 identity', () => {
    expect(script).toContain('systemctl enable --now lablink-agent.service');
    expect(script).not.toMatch(/^User=/m);
    expect(script).toContain('LABLINK_DESKTOP_USER=$DESKTOP_USER');
    expect(script).toContain('LABLINK_IDENTITY=ec2');
    expect(script).not.toMatch(/FLEET_TOKEN|secretsmanager/);
    expect(script).toContain("VM_NAME='lablink-vm-7'");
    expect(script).toContain('https://dl.google.com/linux/direct/chrome-remote-desktop_current_amd64.deb');
  });

  it('gives the agent the CRD journal probe, so the never-connected rule acts on deployed VMs (real bash writes agent.env, the agent reads it)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lablink-agent-env-'));
    try {
      const written = /\{\n {2}echo "LABLINK_ALLOCATOR_URL=[\s\S]*?\n\} > \/etc\/lablink\/agent.env/
        .exec(script)![0]
        .replace('/etc/lablink/agent.env', `${dir}/agent.env`);
      execFileSync('bash', [
        '-c',
        `set -eu; ALLOCATOR_URL=http://allocator.internal DESKTOP_USER=lablink LOG=/var/log/boot.log\n${written}`,
      ]);
      const agentEnv = Object.fromEntries(
        readFileSync(`${dir}/agent.env`, 'utf8')
          .trim()
          .split('\n')
          .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
      );
      expect(readAgentConfig({ ...agentEnv, LABLINK_VM_NAME: 'lablink-vm-7' }).health.inUseProbe).toEqual({
        kind: 'crd-journal',
        journalctl: 'journalctl',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('denies the desktop user cron, at and lingering by name, so a fresh account of that name gets none of them either (real bash in a throwaway root)', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'lablink-second-walls-'));
    try {
      const block = /^shared sh -c 'for f in \/etc\/cron\.deny[\s\S]*?"\$DESKTOP_USER"$/m.exec(script)![0];
      writeFileSync(path.join(root, 'at.deny'), 'ftp\n');
      const run = spawnSync(
        'bash',
        [
          '-c',
          `set -eEuo pipefail\numask 077\nDESKTOP_USER=lablink\n${/^shared\(\) \{.*\}$/m.exec(script)![0]}\n${block}\n${block}`.replaceAll(
            '/etc/',
            `${root}/`,
          ),
        ],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      expect(run.stderr).toBe('');
      // Twice (a second boot) adds the name once.
      expect(readFileSync(path.join(root, 'cron.deny'), 'utf8')).toBe('lablink\n');
      expect(readFileSync(path.join(root, 'at.deny'), 'utf8')).toBe('ftp\nlablink\n');
      const rule = readFileSync(path.join(root, 'polkit-1', 'rules.d', '10-lablink-no-linger.rules'), 'utf8');
      expect(rule).toBe(
        'polkit.addRule(function(a, s) { if (a.id == "org.freedesktop.login1.set-self-linger" && s.user == "lablink") return polkit.Result.NO; });\n',
      );
      for (const file of ['cron.deny', 'polkit-1/rules.d/10-lablink-no-linger.rules'])
        expect(statSync(path.join(root, file)).mode & 0o777).toBe(0o644);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('leaves its own comment lines behind (an 80-VM nested stack repeats the script 80 times) but keeps the files it writes whole', () => {
    expect(script).not.toContain('# Second walls');
    // The one comment left is the agent unit's, part of a file the VM keeps.
    expect(script.split('\n').filter((line) => /^\s*#(?!!)/.test(line))).toEqual([expect.stringMatching(/^# Root, so the participant/)]);
    expect(script).toMatch(/\[Service\]\n# Root, so the participant/);
  });

  it('signals CloudFormation for this VM’s own resource, after the agent registered or at the first failed step', () => {
    expect(script).toContain("STACK_NAME='LabLink'");
    expect(script).toContain("SIGNAL_RESOURCE='FleetVm7ABCDEF12'");
    expect(script).toContain("trap 'failed $?' ERR");
    const register = script.indexOf('step register');
    expect(register).toBeGreaterThan(script.indexOf('systemctl enable --now lablink-agent.service'));
    expect(script.indexOf('\nsignal SUCCESS ')).toBeGreaterThan(register);
  });

  it('takes download locations from the environment only as overrides of the real ones', () => {
    expect(script).toContain('CRD_URL=${LABLINK_CRD_PACKAGE_URL:-https://dl.google.com/');
    expect(script).toContain('NODE_DIST=${LABLINK_NODE_DIST_URL:-https://nodejs.org/dist}');
    expect(script).toMatch(/retry 5 curl [^\n]*"\$CRD_URL"/);
    expect(script).toMatch(/retry 5 curl [^\n]*"\$NODE_DIST\/\$NODE_VERSION/);
  });
});

/** A shell function of a boot script (on one line or several), as written there. */
const shellFunction = (rendered: string, name: string) =>
  new RegExp(`^${name}\\(\\) \\{(?: [^\\n]*\\}|\\n[\\s\\S]*?\\n\\})$`, 'm').exec(rendered)![0];

describe('the boot script’s CloudFormation signal (a real curl against a stand-in that accepts only cfn-signal’s request)', () => {
  const script = renderClientUserData(VM_7);

  /** Runs the script's own signal function (and what it calls) against a fake IMDS and the stand-in endpoint. */
  async function signalWith(status: string, uniqueId: string) {
    const imds = await startFakeImds('i-0123456789abcdef0');
    const cloudFormation = await startStandInServer({}, imds.document);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lablink-signal-'));
    try {
      const functions = ['retry', 'imds', 'field', 'identity', 'signal']
        .map((name) => shellFunction(script, name))
        .join('\n')
        .replaceAll('/run/lablink-', `${dir}/`);
      // Not spawnSync: the stand-ins answer from this process's event loop.
      const child = spawn(
        'bash',
        [
          '-c',
          `set -eEuo pipefail\nIMDS=${imds.url}/latest\nSTACK_NAME='LabLink'\nSIGNAL_RESOURCE='FleetVm7ABCDEF12'\n${functions}\nsignal ${status} ${uniqueId}`,
        ],
        {
          env: { PATH: process.env.PATH, LABLINK_CFN_URL: `${cloudFormation.url}/cloudformation/` },
          stdio: 'ignore',
        },
      );
      const exitCode = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      return { exitCode, signals: [...cloudFormation.signals], refused: [...cloudFormation.refusedSignals] };
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await cloudFormation.close();
      await imds.close();
    }
  }

  it('is a GET with cfn-signal’s query parameters and headers, authenticated by the signed identity document', async () => {
    const { exitCode, signals, refused } = await signalWith('FAILURE', 'lablink-vm-7:install-node');
    expect(refused).toEqual([]);
    expect(exitCode).toBe(0);
    expect(signals).toEqual([
      {
        stackName: 'LabLink',
        logicalResourceId: 'FleetVm7ABCDEF12',
        status: 'FAILURE',
        uniqueId: 'lablink-vm-7:install-node',
        authenticated: true,
      },
    ]);
  });

  it('is refused by the stand-in when shaped otherwise: the old POST with a form body, or a missing ContentType', async () => {
    const imds = await startFakeImds('i-0123456789abcdef0');
    const cloudFormation = await startStandInServer({}, imds.document);
    try {
      const form = new URLSearchParams({
        Action: 'SignalResource',
        Version: '2010-05-15',
        StackName: 'LabLink',
        LogicalResourceId: 'R',
        Status: 'SUCCESS',
        UniqueId: 'i-1',
      });
      const headers = { accept: 'application/json', 'user-agent': 'CloudFormation Tools' };
      const post = await fetch(`${cloudFormation.url}/cloudformation/`, { method: 'POST', headers, body: form });
      const noContentType = await fetch(`${cloudFormation.url}/cloudformation/?${form}`, { headers });
      expect([post.status, noContentType.status]).toEqual([400, 400]);
      expect(cloudFormation.refusedSignals).toEqual([
        'method POST, not GET',
        'query parameters Action,LogicalResourceId,StackName,Status,UniqueId,Version, not Action,ContentType,LogicalResourceId,StackName,Status,UniqueId,Version',
      ]);
      expect(cloudFormation.signals).toEqual([]);
    } finally {
      await cloudFormation.close();
      await imds.close();
    }
  });
});

describe('client VM user-data: the files that identify the VM', () => {
  const script = renderClientUserData(VM_7);

  it('makes every file root-only from its first line: nothing is written before the umask', () => {
    const lines = script.split('\n');
    expect(lines.slice(0, lines.indexOf('umask 077')).filter((line) => !line.startsWith('#'))).toEqual(['set -eEuo pipefail']);
  });

  it('keeps the identity document, its signature and CloudFormation’s authorization root-only, and off curl’s command line (real bash, stand-in curl)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lablink-identity-files-'));
    try {
      const bin = path.join(dir, 'bin');
      execFileSync('mkdir', [bin]);
      // The stand-in answers the metadata service and records its argv and, for a header file, the file's mode and text.
      writeFileSync(
        path.join(bin, 'curl'),
        `#!/bin/bash
echo "$*" >> ${dir}/argv.log
for arg in "$@"; do case "$arg" in
  @*) stat -c '%a %U' "\${arg#@}" >> ${dir}/header.log; cat "\${arg#@}" >> ${dir}/header.log ;;
  */api/token) echo token ;;
  */instance-identity/document) echo '{"region" : "eu-west-1", "instanceId" : "i-0abc"}' ;;
  */instance-identity/signature) echo 'c2lnbmF0dXJl' ;;
esac; done
`,
        { mode: 0o755 },
      );
      const functions = ['retry', 'imds', 'field', 'identity', 'signal'].map((name) => shellFunction(script, name)).join('\n');
      const run = spawnSync(
        'bash',
        [
          '-c',
          `set -eEuo pipefail\numask 077\nIMDS=http://imds\nSIGNAL_RESOURCE=Vm7\nSTACK_NAME=LabLink\nLABLINK_CFN_URL=http://cfn/\n${functions.replaceAll('/run/lablink-', `${dir}/`)}\nsignal SUCCESS i-0abc\nstat -c '%a %U' ${dir}/identity.json`,
        ],
        { encoding: 'utf8', env: { PATH: `${bin}:${process.env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      expect(run.stderr).toBe('');
      expect(run.stdout.trim()).toBe('600 root'.replace('root', os.userInfo().username));
      const document = Buffer.from('{"region" : "eu-west-1", "instanceId" : "i-0abc"}\n').toString('base64');
      expect(readFileSync(path.join(dir, 'header.log'), 'utf8')).toBe(
        `600 ${os.userInfo().username}\nAuthorization: CFN_V1 ${document}:c2lnbmF0dXJl\n`,
      );
      const argv = readFileSync(path.join(dir, 'argv.log'), 'utf8');
      expect(argv).not.toContain('c2lnbmF0dXJl');
      expect(argv).not.toContain(document);
      expect(existsSync(path.join(dir, 'cfn-auth.header'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the metadata guard unit', () => {
  const script = renderClientUserData(VM_7);
  const unit = /cat > \/etc\/systemd\/system\/lablink-metadata-guard.service <<UNIT\n([\s\S]*?)\nUNIT\n/.exec(script)![1];

  it('runs early on every boot, before any network and without the default dependencies that made an ordering cycle with cloud-init', () => {
    expect(unit).toMatch(/^DefaultDependencies=no$/m);
    expect(unit).toMatch(/^After=systemd-modules-load.service local-fs.target$/m);
    expect(unit).toMatch(/^Before=network-pre.target shutdown.target lablink-agent.service$/m);
    expect(unit).toMatch(/^Wants=network-pre.target$/m);
    expect(unit).toMatch(/^Conflicts=shutdown.target$/m);
    expect(unit).toMatch(/^WantedBy=sysinit.target$/m);
    expect(script).toContain('systemctl enable --now lablink-metadata-guard.service');
  });
});

describe('client VM user-data of a spare (no name baked in)', () => {
  const { vmName: _name, stackName: _stack, signalResource: _resource, ...spareOptions } = VM_7;
  const script = renderClientUserData(spareOptions);
  const named = renderClientUserData(VM_7);

  /**
   * Runs the boot script's claim-name step and its agent.env with stand-ins for node (the
   * agent answering `answers` in turn, exit 1 on "fail"), hostnamectl and sleep.
   */
  function claimName(answers: string[]): { status: number | null; output: string; agentEnv?: string; hostname?: string } {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lablink-claim-name-'));
    try {
      const step = script
        .slice(script.indexOf('\nstep claim-name\n'), script.indexOf('\nstep start-agent\n'))
        .split('/etc/lablink/agent.env')
        .join(`${dir}/agent.env`);
      // `env` runs node from PATH: a stand-in that answers in turn and logs how it was called.
      writeFileSync(path.join(dir, 'answers'), answers.join('\n') + '\n');
      writeFileSync(
        path.join(dir, 'node'),
        `#!/bin/bash\necho "$LABLINK_ALLOCATOR_URL $LABLINK_IDENTITY $*" >> ${dir}/agent-calls\nanswer=$(sed -n "$(wc -l < ${dir}/agent-calls)p" ${dir}/answers)\n[ "$answer" != fail ] || { echo 'no replacement waiting' >&2; exit 1; }\necho "$answer"\n`,
        { mode: 0o755 },
      );
      const prelude = [
        'set -eEuo pipefail',
        "ALLOCATOR_URL='http://allocator.internal' LOG=/var/log/boot.log DESKTOP_USER=lablink",
        'step() { STEP=$1; }',
        'sleep() { :; }',
        `PATH=${dir}:$PATH`,
        `hostnamectl() { echo "$2" > ${dir}/hostname; }`,
        shellFunction(script, 'retry'),
        `trap 'echo "FAILURE signalled for $STEP"; exit 1' ERR`,
      ].join('\n');
      const run = spawnSync('bash', ['-c', `${prelude}\n${step}\necho done`], { encoding: 'utf8' });
      const read = (file: string) => (existsSync(path.join(dir, file)) ? readFileSync(path.join(dir, file), 'utf8') : undefined);
      expect(read('agent-calls')?.split('\n')[0]).toBe('http://allocator.internal ec2 /opt/lablink/agent.js claim-name');
      return { status: run.status, output: run.stdout + run.stderr, agentEnv: read('agent.env'), hostname: read('hostname')?.trim() };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('is valid bash, fits EC2’s limit, and bakes in no VM name, stack or resource to signal', () => {
    expect(() => execFileSync('bash', ['-n'], { input: script })).not.toThrow();
    expect(Buffer.byteLength(script)).toBeLessThan(EC2_USER_DATA_LIMIT_BYTES);
    expect(script).toContain("VM_NAME=''\n");
    expect(script).toContain("STACK_NAME=''\nSIGNAL_RESOURCE=''\n");
    expect(script).not.toContain('lablink-vm-7');
    expect(script).not.toContain('step set-hostname');
  });

  it('claims its name just before the agent starts (the allocator expects heartbeats from the claim on), then sets the hostname and gives the agent the name', () => {
    const checked = script.indexOf('sha256sum --check --quiet\n');
    const claim = script.indexOf('\nstep claim-name\n');
    expect(claim).toBeGreaterThan(checked);
    const withSetup = renderClientUserData({ ...spareOptions, setup: { check: 'test -x /usr/bin/python3' } });
    expect(withSetup.indexOf('\nstep claim-name\n')).toBeGreaterThan(withSetup.indexOf('\nstep install-setup\n'));
    expect(withSetup.indexOf('\nstep install-setup\n')).toBeGreaterThan(0);
    expect(script.indexOf('\nstep start-agent\n')).toBeGreaterThan(claim);
    expect(script.indexOf('hostnamectl set-hostname "$VM_NAME"')).toBeGreaterThan(claim);
    expect(script.indexOf('echo "LABLINK_VM_NAME=$VM_NAME" >> /etc/lablink/agent.env')).toBeGreaterThan(claim);
    expect(script).toContain(
      'until VM_NAME=$(env LABLINK_ALLOCATOR_URL="$ALLOCATOR_URL" LABLINK_IDENTITY=ec2 node /opt/lablink/agent.js claim-name); do',
    );
  });

  it('asks again while no replacement waits, and hands the agent the name it got', () => {
    const claimed = claimName(['fail', 'fail', 'lablink-vm-17']);
    expect(claimed.status).toBe(0);
    expect(claimed.output).toContain('no replacement waiting');
    expect(claimed.output.match(/no name yet; a warm spare, asking again in 60 s/g)).toHaveLength(2);
    expect(claimed.hostname).toBe('lablink-vm-17');
    expect(claimed.agentEnv).toBe('LABLINK_VM_NAME=lablink-vm-17\n');
  });

  it('stays a warm spare while no replacement waits, asking each minute for as long as it takes, and fails the boot on an answer that is no hostname', () => {
    const warm = claimName([...Array(40).fill('fail'), 'lablink-vm-5']);
    expect(warm.status).toBe(0);
    expect(warm.output.match(/asking again in 60 s/g)).toHaveLength(40);
    expect(warm.hostname).toBe('lablink-vm-5');
    const injected = claimName(['vm-1 LABLINK_IDENTITY=token']);
    expect(injected.output).toContain('FAILURE signalled for claim-name');
    expect(injected.agentEnv).toBeUndefined();
  });

  it('signals nothing, since no CloudFormation resource waits for a spare; a named VM still signals', () => {
    for (const [rendered, resource, signalled] of [
      [script, '', false],
      [named, 'FleetVm7ABCDEF12', true],
    ] as const) {
      const run = spawnSync(
        'bash',
        [
          '-c',
          `set -eEuo pipefail\nSIGNAL_RESOURCE='${resource}'\nidentity() { echo identity; return 1; }\n${shellFunction(rendered, 'signal')}\nsignal FAILURE x; echo "returned $?"`,
        ],
        { encoding: 'utf8' },
      );
      expect(run.stdout).toBe(signalled ? 'identity\n' : 'returned 0\n');
    }
  });
});

describe('startHostInvocation', () => {
  const command = { code: '4/0Aanabcdefghijklmnopqrstuvwxyz', redirectUrl: 'https://remotedesktop.google.com/_/oauthredirect' };

  it('runs start-host directly when no desktop user is set (local mode)', () => {
    expect(startHostInvocation({ startHostPath: '/opt/crd/start-host', vmName: 'vm-1' }, command)).toEqual({
      file: '/opt/crd/start-host',
      args: [`--code=${command.code}`, `--redirect-url=${command.redirectUrl}`, '--name=vm-1'],
    });
  });

  it('runs start-host through runuser as the desktop user on a VM', () => {
    expect(startHostInvocation({ startHostPath: '/opt/crd/start-host', vmName: 'vm-1', desktopUser: 'lablink' }, command)).toEqual({
      file: '/usr/sbin/runuser',
      args: [
        '-u',
        'lablink',
        '--',
        '/opt/crd/start-host',
        `--code=${command.code}`,
        `--redirect-url=${command.redirectUrl}`,
        '--name=vm-1',
      ],
    });
  });
});

describe('client VM user-data with a workshop setup', () => {
  const setupOptions = {
    script: { url: 'https://cdk-assets.s3.eu-west-1.amazonaws.com/setup0123.sh', sha256: 'ab'.repeat(32) },
    check: `python -c "import sleap" && echo 'ok'`,
    repository: 'https://github.com/owner/tutorial.git',
    repositoryRef: 'v1.2',
    containerImage: 'docker.io/library/python:3.12',
  };
  const script = renderClientUserData({ ...VM_7, setup: setupOptions });

  it('is valid bash, fits EC2’s limit, downloads the script with the VM’s role and checks it, and hands the agent its plan', () => {
    expect(() => execFileSync('bash', ['-n'], { input: script })).not.toThrow();
    expect(Buffer.byteLength(script)).toBeLessThan(EC2_USER_DATA_LIMIT_BYTES);
    expect(script).toContain(`retry 10 s3_get "$SETUP_URL" ${SETUP_SCRIPT_PATH}`);
    expect(script).toContain(`echo '${'ab'.repeat(32)}  ${SETUP_SCRIPT_PATH}' | sha256sum --check --quiet`);
    expect(script).toContain('install -y -q --no-install-recommends git podman uidmap');
    const plan = /<<'LABLINK_SETUP_PLAN'\n(.*)\nLABLINK_SETUP_PLAN\n/.exec(script)![1];
    expect(JSON.parse(plan)).toEqual({
      script: SETUP_SCRIPT_PATH,
      check: setupOptions.check,
      repository: setupOptions.repository,
      repositoryRef: 'v1.2',
      containerImage: setupOptions.containerImage,
      workDir: '/var/lib/lablink-setup',
    });
    // The agent reads the plan when it starts, so the plan is written first.
    expect(script.indexOf('LABLINK_SETUP=/etc/lablink/setup.json')).toBeLessThan(
      script.indexOf('systemctl enable --now lablink-agent.service'),
    );
  });

  /** Runs the boot script's wait for the setup result against a result file, with its own step, field and ERR trap. */
  function waitForSetup(result: string | undefined): { status: number | null; output: string } {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lablink-setup-wait-'));
    try {
      const resultFile = path.join(dir, 'setup-result.json');
      if (result !== undefined) writeFileSync(resultFile, result);
      const wait = script
        .slice(script.indexOf('\nstep setup\n'), script.indexOf('\nstep ready\n'))
        .split(SETUP_RESULT_PATH)
        .join(resultFile);
      const field = /^field\(\) .*$/m.exec(script)![0];
      const prelude = `set -eEuo pipefail\nstep() { STEP=$1; }\n${field}\ntrap 'echo "FAILURE signalled for lablink-vm-7:$STEP"; exit 1' ERR\n`;
      const run = spawnSync('bash', ['-c', `${prelude}${wait}\necho "SUCCESS signalled"`], { encoding: 'utf8' });
      return { status: run.status, output: run.stdout + run.stderr };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('signals success once the agent’s setup passed', () => {
    expect(waitForSetup('{"fingerprint":"f","ok":true}\n')).toEqual({ status: 0, output: 'SUCCESS signalled\n' });
  });

  it('fails the deploy naming the setup’s failed step, with its reason in the log', () => {
    const failed = waitForSetup(
      '{"fingerprint":"f","ok":false,"step":"setup-check","reason":"Setup failed at setup-check: exited with status 1."}\n',
    );
    expect(failed.status).toBe(1);
    expect(failed.output).toContain('ERROR: Setup failed at setup-check: exited with status 1.');
    expect(failed.output).toContain('FAILURE signalled for lablink-vm-7:setup-check');
  });
});
