/**
 * Small process helpers shared by the rehearsal modules.
 *
 * Every external command runs with a timeout, in its own process group, and is
 * remembered until it ends, so a timeout or a signal can kill the whole tree
 * (debootstrap, apt and nsenter all fork) instead of leaving it behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export interface RunOptions {
  /** Hard limit: the process group is killed with SIGKILL when it is reached. */
  timeoutMs: number;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolve with the result instead of rejecting when the exit code is not 0. */
  allowFailure?: boolean;
  /** Receives output as it arrives (for long builds); output is still collected. */
  onOutput?: (chunk: string) => void;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Process groups still running; killed by killAllChildren() on abnormal exit. */
const liveGroups = new Set<number>();

export class CommandError extends Error {
  constructor(
    message: string,
    readonly result: RunResult,
  ) {
    super(message);
  }
}

export function run(cmd: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      // Own process group, so the timeout can kill the grandchildren too.
      detached: true,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const pid = child.pid;
    if (pid !== undefined) liveGroups.add(pid);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      options.onOutput?.(s);
    });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
      options.onOutput?.(s);
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
    const timer = setTimeout(() => {
      timedOut = true;
      if (pid !== undefined) killGroup(pid);
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      if (pid !== undefined) liveGroups.delete(pid);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (pid !== undefined) liveGroups.delete(pid);
      const result: RunResult = { code, signal, stdout, stderr, ms: Date.now() - started };
      const what = `${cmd} ${args.join(' ')}`.slice(0, 300);
      if (timedOut) reject(new CommandError(`timed out after ${options.timeoutMs} ms: ${what}`, result));
      else if (code !== 0 && !options.allowFailure)
        reject(new CommandError(`exit ${code ?? signal}: ${what}\n${stderr.slice(-2000)}`, result));
      else resolve(result);
    });
  });
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Synchronous, so it can run from a signal or 'exit' handler. */
export function killAllChildren(): void {
  for (const pgid of liveGroups) killGroup(pgid);
  liveGroups.clear();
}

/** A synchronous command for cleanup paths, where async work may never finish. */
export function runSync(cmd: string, args: readonly string[], timeoutMs = 10_000): number | null {
  return spawnSync(cmd, args, { stdio: 'ignore', timeout: timeoutMs }).status;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Blocking sleep for synchronous cleanup code. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Polls `check` until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export async function commandExists(name: string): Promise<boolean> {
  const r = await run('sh', ['-c', `command -v ${name}`], { timeoutMs: 5_000, allowFailure: true });
  return r.code === 0;
}

/**
 * Cleanup steps that must run on every exit path: normal return, thrown error,
 * SIGINT/SIGTERM and process exit. Steps are synchronous (see runSync) because
 * Node runs no async work in an 'exit' handler, and run at most once each.
 */
type CleanupStep = () => void;
const cleanupSteps: CleanupStep[] = [];
let handlersInstalled = false;

export function onCleanup(step: CleanupStep): () => void {
  installHandlers();
  let done = false;
  const once: CleanupStep = () => {
    if (done) return;
    done = true;
    try {
      step();
    } catch (err) {
      console.error('cleanup step failed:', err);
    }
  };
  cleanupSteps.push(once);
  // The returned function runs the step now (normal path) and unregisters it.
  return () => {
    const i = cleanupSteps.indexOf(once);
    if (i >= 0) cleanupSteps.splice(i, 1);
    once();
  };
}

export function runAllCleanups(): void {
  killAllChildren();
  // Reverse order: the container stops before its netns and overlay are removed.
  while (cleanupSteps.length > 0) cleanupSteps.pop()?.();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', runAllCleanups);
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    process.on(signal, () => {
      console.error(`\n${signal}: cleaning up`);
      runAllCleanups();
      process.exit(code);
    });
  }
}

/** Elapsed seconds with one decimal, for timing reports. */
export function secondsSince(startMs: number): number {
  return Math.round((Date.now() - startMs) / 100) / 10;
}

/** Unmounts everything below dir (deepest first), then deletes it on its own filesystem only. */
export function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const mountPoint of mountsBelow(dir)) runSync('umount', ['-l', mountPoint]);
  runSync('rm', ['-rf', '--one-file-system', dir], 120_000);
}

/** Mount points at or below dir, deepest first, from /proc/self/mountinfo. */
export function mountsBelow(dir: string): string[] {
  const prefix = dir.replace(/\/$/, '');
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === prefix || p.startsWith(prefix + '/'))
    .sort((a, b) => b.length - a.length);
}
