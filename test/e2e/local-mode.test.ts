import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../local/postgres';
import { waitFor } from '../support/fixtures';
import { CapturedProcess, spawnCapturing } from '../support/processes';
import { freeCount } from '../support/stack';

const ROOT = path.join(__dirname, '..', '..');

/** The README's quick start (`npm ci && npm start`); the install is what CI has just done. */
function startLocalMode(args: string[]): CapturedProcess {
  const quickStart = /```sh\n(npm ci && npm start)\n```/.exec(readFileSync(path.join(ROOT, 'README.md'), 'utf8'))?.[1];
  expect(quickStart).toBe('npm ci && npm start');
  const env = { ...process.env };
  delete env.LABLINK_FLEET_TOKEN;
  delete env.LABLINK_ADMIN_SECRET;
  // Its own process group, as a terminal gives it, so Ctrl-C reaches every process in it.
  return spawnCapturing('npm', ['start', '--silent', '--', ...args], { cwd: ROOT, detached: true, env });
}

/** The PostgreSQL data folder the runner printed; it holds emails, PINs and codes. */
async function dataFolderOf(output: () => string): Promise<string> {
  const dir = await waitFor(
    () => /PostgreSQL data: (\S+) \(deleted when LabLink stops\)/.exec(output())?.[1],
    'the runner to print its data folder',
    45_000,
  );
  expect(existsSync(path.join(dir, 'data', 'PG_VERSION'))).toBe(true);
  return dir;
}

function processesInGroup(pgid: number): string[] {
  const lines = execFileSync('ps', ['-eo', 'pgid=,pid=,args='], { encoding: 'utf8' }).split('\n');
  return lines.filter((line) => line.trim().split(/\s+/)[0] === String(pgid));
}

describe('npm start (local mode)', () => {
  it('prints the form URL, registers the simulated VMs, and Ctrl-C leaves no process and no data folder behind', async () => {
    const port = await freePort();
    const { child, output, exited } = startLocalMode(['--port', String(port), '--vms', '2']);
    let dataFolder: string;
    try {
      dataFolder = await dataFolderOf(output);
      // The banner's last line: each line is its own write, and a read can end between two of them.
      await waitFor(() => output().includes('Press Ctrl-C to stop.'), 'local mode to start', 45_000);
      expect(output()).toContain(`Form:          http://127.0.0.1:${port}/`);
      expect(output()).toContain(`Admin:         http://127.0.0.1:${port}/admin  (user admin)`);
      expect(output()).toMatch(/Fleet token: +\S{16,} \(generated/);
      expect(output()).toMatch(/Admin secret: +\S{16,} \(generated/);
      await waitFor(async () => (await freeCount(`http://127.0.0.1:${port}`)) === 2, 'two simulated VMs to register');
      // The log line travels through a pipe and can arrive after the count changes.
      await waitFor(() => /vm\.registered hostname=lablink-vm-1\b/.test(output()), 'the log to show vm-1 registered');
      await waitFor(() => /vm\.registered hostname=lablink-vm-2\b/.test(output()), 'the log to show vm-2 registered');
    } finally {
      process.kill(-child.pid!, 'SIGINT');
    }
    // npm reports Ctrl-C the conventional way (128 + SIGINT, or the signal) once the runner has shut down.
    expect([0, 130, null]).toContain(await exited);
    await waitFor(() => output().includes('Stopping'), 'the runner to shut down');
    await waitFor(() => processesInGroup(child.pid!).length === 0, 'every local-mode process to exit');
    expect(existsSync(dataFolder)).toBe(false);
  });

  it('deletes the PostgreSQL data folder on SIGTERM too', async () => {
    const { child, output, exited } = startLocalMode(['--port', String(await freePort()), '--vms', '0']);
    const dataFolder = await dataFolderOf(output);
    await waitFor(() => output().includes('LabLink is running'), 'local mode to start', 45_000);
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
    await waitFor(() => processesInGroup(child.pid!).length === 0, 'every local-mode process to exit');
    expect(existsSync(dataFolder)).toBe(false);
  });

  it('deletes the PostgreSQL data folder when it cannot start (port taken), exiting 1 with the reason', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { output, exited } = startLocalMode(['--port', String((taken.address() as net.AddressInfo).port), '--vms', '0']);
      const dataFolder = await dataFolderOf(output);
      expect(await exited).toBe(1);
      expect(output()).toContain('LabLink could not start: ');
      expect(existsSync(dataFolder)).toBe(false);
    } finally {
      taken.close();
    }
  });

  it('refuses a bad flag with a clear message and exit code 2', async () => {
    const { output, exited } = startLocalMode(['--vms', 'lots']);
    expect(await exited).toBe(2);
    expect(output()).toContain('--vms must be a whole number from 0 to 200, not "lots".');
  });

  it('--setup-script runs the script on each simulated VM before it joins the pool, and the admin sees its output', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lablink-local-setup-'));
    const script = path.join(dir, 'my-setup.sh');
    writeFileSync(script, 'echo "tutorial installed in $(pwd)"\ntouch ready-for-class\n');
    const port = await freePort();
    const { child, output, exited } = startLocalMode([
      '--port',
      String(port),
      '--vms',
      '1',
      '--setup-script',
      script,
      '--setup-check',
      'test -f ready-for-class',
    ]);
    try {
      await waitFor(() => output().includes('LabLink is running'), 'local mode to start', 45_000);
      await waitFor(async () => (await freeCount(`http://127.0.0.1:${port}`)) === 1, 'the VM to pass its setup and join the pool', 30_000);
      const secret = /Admin secret: +(\S{16,}) \(generated/.exec(output())![1];
      const authorization = `Basic ${Buffer.from(`admin:${secret}`).toString('base64')}`;
      const logs = await waitFor(async () => {
        const view = (await (await fetch(`http://127.0.0.1:${port}/api/vms/lablink-vm-1/logs`, { headers: { authorization } })).json()) as {
          lines: { source: string; text: string }[];
        };
        return view.lines.some((line) => line.source === 'setup') && view;
      }, 'the setup output on the admin API');
      expect(logs.lines.find((line) => line.source === 'setup')?.text).toMatch(
        /^tutorial installed in \/tmp\/lablink-lablink-vm-1-\w+\/setup$/,
      );
    } finally {
      process.kill(-child.pid!, 'SIGINT');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a setup script that does not exist, with exit code 2', async () => {
    const { output, exited } = startLocalMode(['--setup-script', '/nonexistent/my-setup.sh']);
    expect(await exited).toBe(2);
    expect(output()).toContain('--setup-script: there is no file /nonexistent/my-setup.sh.');
  });
});
