import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildAgentBundle } from '../../agent/bundle';
import { agentBundleFile } from '../../lib/agent-asset';
import { startHostInvocation } from '../../agent/start-host';
import { EC2_USER_DATA_LIMIT_BYTES, SETUP_RESULT_PATH, SETUP_SCRIPT_PATH, renderClientUserData } from '../../lib/user-data';

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
    expect(sha256).toBe(createHash('sha256').update(buildAgentBundle({ minify: true })).digest('hex'));
    expect(script).toContain(`AGENT_SHA256='${sha256}'`);
    expect(script).toMatch(/retry 10 s3_get "\$AGENT_URL" \/opt\/lablink\/agent.js\necho "\$AGENT_SHA256  \/opt\/lablink\/agent.js" \| sha256sum --check/);
  });

  it('hands the role’s credentials to curl in a root-only file, never on a command line the log or ps could show', () => {
    expect(script).toContain('(umask 077; printf \'user = "%s:%s"');
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
      args: ['-u', 'lablink', '--', '/opt/crd/start-host', `--code=${command.code}`, `--redirect-url=${command.redirectUrl}`, '--name=vm-1'],
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
    expect(script.indexOf('LABLINK_SETUP=/etc/lablink/setup.json')).toBeLessThan(script.indexOf('systemctl enable --now lablink-agent.service'));
  });

  /** Runs the boot script's wait for the setup result against a result file, with its own step, field and ERR trap. */
  function waitForSetup(result: string | undefined): { status: number | null; output: string } {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lablink-setup-wait-'));
    try {
      const resultFile = path.join(dir, 'setup-result.json');
      if (result !== undefined) writeFileSync(resultFile, result);
      const wait = script.slice(script.indexOf('\nstep setup\n'), script.indexOf('\nstep ready\n')).split(SETUP_RESULT_PATH).join(resultFile);
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
    const failed = waitForSetup('{"fingerprint":"f","ok":false,"step":"setup-check","reason":"Setup failed at setup-check: exited with status 1."}\n');
    expect(failed.status).toBe(1);
    expect(failed.output).toContain('ERROR: Setup failed at setup-check: exited with status 1.');
    expect(failed.output).toContain('FAILURE signalled for lablink-vm-7:setup-check');
  });
});
