/**
 * Boots the cached rootfs with systemd-nspawn, inside a rehearsal's network namespace,
 * on a throwaway overlay so the cache stays pristine.
 *
 * Why these choices (measured on the 2-core rehearsal machines, no systemd on the host):
 * - Our own overlayfs (lower = cached rootfs, upper/work/merged in a temp dir) mounts in
 *   milliseconds, and unlike `--volatile=overlay` its merged view is an ordinary host path,
 *   so the rehearsal can read what the container writes while it runs.
 *   `cp -a` of the ~600 MB rootfs would cost seconds per rehearsal (no reflinks on ext4).
 * - `--register=no --keep-unit`: there is no host systemd/machined to register with.
 * - `--network-namespace-path` drops CAP_NET_ADMIN from the container's bounding set
 *   (only --private-network keeps it), so iptables in the user-data fails with
 *   "Permission denied (you must be root)" unless `--capability=CAP_NET_ADMIN` is given.
 * - Commands entered with nsenter keep the HOST's full capability set and live outside
 *   the container's cgroups; what must run like a boot service runs under the container's
 *   own systemd (the user-data under cloud-final).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Netns } from './netns';
import { mountsBelow, onCleanup, removeTree, run, runSync, sleepSync, waitFor, type RunResult } from './util';

export interface Bind {
  host: string;
  container: string;
  readOnly?: boolean;
}

export interface BootOptions {
  /** The cached rootfs (ensureRootfs); used read-only as the overlay's lower layer. */
  rootfs: string;
  netns: Netns;
  binds?: readonly Bind[];
  /** Machine name for nspawn; default `lablink-rehearsal-<pid>`. */
  machine?: string;
  /** Added to nspawn's default set; default CAP_NET_ADMIN (see the file comment). */
  capabilities?: readonly string[];
  /** Writes files into the writable layer (its merged root) before boot. */
  prepare?: (rootDir: string) => Promise<void>;
  /** Until systemd reports running/degraded; default 90 s. */
  bootTimeoutMs?: number;
  /** Parent of the temporary overlay directories; default /var/tmp (same disk as the cache here). */
  workRoot?: string;
  /** Extra systemd-nspawn arguments. */
  nspawnArgs?: readonly string[];
}

export interface ExecOptions {
  /** Run as this user (via runuser inside the container); default root. */
  user?: string;
  /** Written to stdin; otherwise stdin is /dev/null. */
  input?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  allowFailure?: boolean;
}

export interface Container {
  machine: string;
  readonly nspawnPid: number;
  /** PID 1 of the container, as seen from the host (of its current boot). */
  readonly leaderPid: number;
  /** The container's root as a host path (overlay merged dir); readable while it runs. */
  rootDir: string;
  /** Only what the container changed (overlay upper dir). */
  upperDir: string;
  /** nspawn's output (the container console), readable until stop(). */
  consoleLog: string;
  /** Seconds from spawning nspawn until systemd reported running/degraded (the last boot). */
  bootSeconds: number;
  /** `systemctl is-system-running` after boot: running or degraded. */
  systemState: string;
  /**
   * Runs argv through nsenter (all the container's namespaces, host capabilities, host
   * cgroup), as root or as `user`. For probes and user commands.
   */
  exec(argv: readonly string[], options?: ExecOptions): Promise<RunResult>;
  /** Reads a file written inside the container (through the overlay's merged dir). */
  readFile(pathInContainer: string): Promise<string>;
  /**
   * Boots the same disk again (the overlay's upper dir kept, /run fresh): `reboot` is the OS's
   * own reboot (EC2's RebootInstances, a repair), `stop-start` a poweroff and a new boot (EC2's
   * stop and start, the warm pool's path), with `whileDown` run in between. nspawn never restarts
   * a container itself (it exits, 133 on a reboot), so both end it and start it again.
   */
  restart(how: 'reboot' | 'stop-start', options?: { timeoutMs?: number; whileDown?: () => Promise<void> }): Promise<void>;
  /** Orderly poweroff (bounded), then removes the overlay and temp dirs. Idempotent. */
  stop(options?: { timeoutMs?: number }): Promise<void>;
}

const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export async function bootContainer(options: BootOptions): Promise<Container> {
  const machine = options.machine ?? `lablink-rehearsal-${process.pid}`;
  // Our pid in the name lets cleanupStaleRehearsals tell a dead rehearsal's leftovers from a live one.
  const workDir = await mkdtemp(join(options.workRoot ?? '/var/tmp', `lablink-rehearsal-${process.pid}-`));
  const upperDir = join(workDir, 'upper');
  const rootDir = join(workDir, 'merged');
  const consoleLog = join(workDir, 'console.log');
  let nspawn: ChildProcess | undefined;
  let leaderPid = 0;

  // Registered before anything exists, so every later failure (or a signal) cleans up.
  const forceTeardown = onCleanup(() => {
    killHard(nspawn?.pid, leaderPid);
    teardownFiles(workDir, machine);
  });

  try {
    await Promise.all(['upper', 'work', 'merged'].map((d) => mkdir(join(workDir, d))));
    await run(
      'mount',
      ['-t', 'overlay', 'overlay', '-o', `lowerdir=${options.rootfs},upperdir=${upperDir},workdir=${join(workDir, 'work')}`, rootDir],
      { timeoutMs: 10_000 },
    );
    await options.prepare?.(rootDir);

    const args = [
      '-q',
      '--register=no',
      '--keep-unit',
      '-b',
      '-D',
      rootDir,
      `--machine=${machine}`,
      `--network-namespace-path=${options.netns.path}`,
      // Never touch the host's journal directory.
      '--link-journal=no',
      // No TTY here: without this nspawn would try an interactive console.
      '--console=read-only',
      ...(options.capabilities ?? ['CAP_NET_ADMIN']).map((c) => `--capability=${c}`),
      ...(options.binds ?? []).map((b) => `--${b.readOnly ? 'bind-ro' : 'bind'}=${b.host}:${b.container}`),
      ...(options.nspawnArgs ?? []),
    ];
    let exited: Promise<void> = Promise.resolve();
    let enter: string[] = [];
    /** Boots the overlay's root (again: the same disk, a fresh /run) and waits for systemd; returns its state and seconds. */
    const startNspawn = async (): Promise<{ systemState: string; bootSeconds: number }> => {
      const started = Date.now();
      const out = openSync(consoleLog, 'a');
      // Own process group: a Ctrl-C in the terminal reaches only us, and we stop it in order.
      const child = spawn('systemd-nspawn', args, { stdio: ['ignore', out, out], detached: true });
      nspawn = child;
      closeSync(out);
      exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const failIfExited = (): void => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`systemd-nspawn exited (${child.exitCode ?? child.signalCode}):\n${tail(consoleLog)}`);
        }
      };

      const bootTimeoutMs = options.bootTimeoutMs ?? 90_000;
      leaderPid = await waitFor(
        'the container leader',
        () => {
          failIfExited();
          return findLeader(child.pid ?? 0);
        },
        10_000,
        50,
      );
      enter = nsenterPrefix(leaderPid);
      // Retried: until systemd has opened its private socket, systemctl cannot connect.
      const systemState = await waitFor(
        'systemd in the container to finish booting',
        async () => {
          failIfExited();
          const r = await run(enter[0], [...enter.slice(1), 'systemctl', 'is-system-running', '--wait'], {
            timeoutMs: Math.max(1_000, bootTimeoutMs - (Date.now() - started)),
            allowFailure: true,
          });
          const state = r.stdout.trim();
          return state === 'running' || state === 'degraded' ? state : undefined;
        },
        bootTimeoutMs,
        250,
      );
      return { systemState, bootSeconds: Math.round((Date.now() - started) / 100) / 10 };
    };
    const firstBoot = await startNspawn();

    const exec = (argv: readonly string[], o: ExecOptions = {}): Promise<RunResult> => {
      const envArgs = Object.entries({ PATH: CONTAINER_PATH, LANG: 'C.UTF-8', ...o.env }).map(([k, v]) => `${k}=${v}`);
      // runuser (like su) sets HOME, SHELL, USER and LOGNAME of the target user.
      const asUser = o.user ? ['runuser', '-u', o.user, '--'] : [];
      return run(enter[0], [...enter.slice(1), ...envArgs, ...asUser, ...argv], {
        timeoutMs: o.timeoutMs ?? 60_000,
        input: o.input,
        allowFailure: o.allowFailure,
      });
    };

    /** Shuts the OS down from inside (`systemctl poweroff|reboot`), as EC2's stop or reboot asks it to, and waits for nspawn to end. */
    const shutDown = async (verb: 'poweroff' | 'reboot', timeoutMs: number): Promise<void> => {
      await exec(['systemctl', verb, '--no-block'], { allowFailure: true });
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
      if ((await Promise.race([exited, timeout])) === 'timeout') throw new Error(`the container did not ${verb} within ${timeoutMs} ms`);
    };

    let stopped = false;
    const stop = async (o: { timeoutMs?: number } = {}): Promise<void> => {
      if (stopped) return;
      stopped = true;
      if (nspawn?.exitCode === null && nspawn.signalCode === null) {
        // On SIGTERM nspawn sends SIGRTMIN+3 to the container's systemd: an orderly halt.
        nspawn.kill('SIGTERM');
        const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), o.timeoutMs ?? 30_000).unref());
        if ((await Promise.race([exited, timeout])) === 'timeout') killHard(nspawn.pid, leaderPid);
      }
      forceTeardown(); // Now only unmounts and deletes (the processes are gone).
    };

    const container: Container = {
      machine,
      get nspawnPid() {
        return nspawn?.pid ?? 0;
      },
      get leaderPid() {
        return leaderPid;
      },
      rootDir,
      upperDir,
      consoleLog,
      ...firstBoot,
      exec,
      readFile: (p) => readFile(join(rootDir, p), 'utf8'),
      async restart(how, o = {}) {
        await shutDown(how === 'reboot' ? 'reboot' : 'poweroff', o.timeoutMs ?? 60_000);
        await o.whileDown?.();
        Object.assign(container, await startNspawn());
      },
      stop,
    };
    return container;
  } catch (err) {
    forceTeardown();
    throw err;
  }
}

/**
 * Removes what a rehearsal killed with SIGKILL left behind (no handler could run): its
 * detached nspawn and container keep running and its overlay stays mounted. Finds work
 * dirs `lablink-rehearsal-<pid>-*` whose pid is gone, kills the nspawn booting from
 * them (and its container), then unmounts and deletes. Returns the dirs removed.
 */
export function cleanupStaleRehearsals(workRoot = '/var/tmp'): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(workRoot)) {
    const m = /^lablink-rehearsal-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid || existsSync(`/proc/${m[1]}`)) continue;
    const workDir = join(workRoot, name);
    const merged = join(workDir, 'merged');
    let machine = `lablink-rehearsal-${m[1]}`;
    for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        continue;
      }
      if (!argv[0]?.endsWith('systemd-nspawn') || !argv.includes(merged)) continue;
      machine = argv.find((a) => a.startsWith('--machine='))?.slice('--machine='.length) ?? machine;
      killHard(Number(pid), findLeader(Number(pid)) ?? 0);
    }
    teardownFiles(workDir, machine);
    removed.push(workDir);
  }
  return removed;
}

/** nsenter into every namespace of the leader, with a clean environment (`env -i`). */
function nsenterPrefix(leaderPid: number): string[] {
  return ['nsenter', '-t', String(leaderPid), '-a', 'env', '-i'];
}

/**
 * The container's PID 1: the child of nspawn whose innermost PID is 1
 * (`NSpid: <host pid> 1` in /proc/<pid>/status).
 */
function findLeader(nspawnPid: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let status: string;
    try {
      status = readFileSync(`/proc/${entry}/status`, 'utf8');
    } catch {
      continue; // Exited while we looked.
    }
    const ppid = /^PPid:\s+(\d+)$/m.exec(status)?.[1];
    const nspid = /^NSpid:\s+(.+)$/m.exec(status)?.[1].trim().split(/\s+/);
    if (Number(ppid) === nspawnPid && nspid && nspid.length > 1 && nspid[nspid.length - 1] === '1') return Number(entry);
  }
  return undefined;
}

/** SIGKILL to PID 1 of a PID namespace kills everything in it; then nspawn itself. */
function killHard(nspawnPid: number | undefined, leaderPid: number): void {
  for (const pid of [leaderPid, nspawnPid]) {
    if (!pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (let i = 0; i < 50 && leaderPid && isAlive(leaderPid); i++) sleepSync(100);
}

function isAlive(pid: number): boolean {
  try {
    // A zombie still has /proc/<pid>; it holds no mounts any more, so count it as gone.
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * Unmounts the overlay and deletes the work dir. nspawn also leaves
 * /run/systemd/nspawn/propagate/<machine> behind when /run is not a tmpfs (as here).
 */
function teardownFiles(workDir: string, machine: string): void {
  for (const mountPoint of mountsBelow(workDir)) {
    if (runSync('umount', [mountPoint]) !== 0) runSync('umount', ['-l', mountPoint]);
  }
  removeTree(workDir);
  const propagate = join('/run/systemd/nspawn/propagate', machine);
  if (existsSync(propagate)) runSync('rm', ['-rf', '--one-file-system', propagate]);
}

function tail(file: string, bytes = 4000): string {
  try {
    return readFileSync(file, 'utf8').slice(-bytes);
  } catch {
    return '(no console output)';
  }
}
