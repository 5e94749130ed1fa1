import { execFile } from 'node:child_process';
import { chmod, chown, cp, lstat, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/** How the agent wipes the desktop between two participants; see readAgentConfig for the defaults. */
export interface ResetConfig {
  /** Stops the desktop user's CRD host service (argv, no shell). */
  stopCrd: string[];
  /** Ends every process of the desktop user's session (argv, no shell); exit code 1 means "none was running". */
  endSession: string[];
  /** The desktop user's home; looked up in /etc/passwd when unset. */
  home?: string;
  /** What a new home starts from. */
  skelDir: string;
  /** Shared temporary folders (/tmp and the like) whose top-level entries owned by the desktop user are deleted. */
  tempDirs: string[];
}

export interface ResetTarget {
  reset: ResetConfig;
  desktopUser?: string;
  /** Where start-host keeps the host registration. */
  crdConfigDir: string;
  /** The agent's own state: never inside the home it deletes. */
  stateDir: string;
  /** Where user accounts are looked up (tests pass their own file). */
  passwdFile?: string;
}

export type ResetStep = 'reset-stop-crd' | 'reset-end-session' | 'reset-remove-host' | 'reset-remove-temp' | 'reset-recreate-home';
export type ResetResult = { ok: true } | { ok: false; message: string };

const COMMAND_TIMEOUT_MS = 60_000;

function run(argv: string[], allowedExitCodes: number[]): Promise<void> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' }, timeout: COMMAND_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (!error || (typeof error.code === 'number' && allowedExitCodes.includes(error.code))) return resolve();
      const lastLine = `${stdout}\n${stderr}`.trim().split('\n').pop()?.slice(0, 200) ?? '';
      const exit = typeof error.code === 'number' ? `exited with code ${error.code}` : error.killed ? 'timed out' : `failed (${error.code ?? error.message})`;
      reject(new Error(`${argv.join(' ')} ${exit}${lastLine ? `: ${lastLine}` : ''}`));
    });
  });
}

/** The account's uid, gid and home from a passwd file. */
export async function lookUpUser(user: string, passwdFile = '/etc/passwd'): Promise<{ uid: number; gid: number; home: string }> {
  for (const line of (await readFile(passwdFile, 'utf8')).split('\n')) {
    const fields = line.split(':');
    if (fields[0] === user && fields.length >= 7) return { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] };
  }
  throw new Error(`There is no user ${user} in ${passwdFile}.`);
}

/** Refuses a home whose deletion would hurt more than the desktop user: the root, a top-level folder, the agent's state. */
function checkHome(home: string, stateDir: string): void {
  const resolved = path.resolve(home);
  if (resolved !== home || resolved.split('/').filter(Boolean).length < 2) throw new Error(`Refusing to recreate ${home}: not a user's home folder.`);
  const relative = path.relative(resolved, path.resolve(stateDir));
  if (!relative.startsWith('..') && !path.isAbsolute(relative)) throw new Error(`Refusing to recreate ${home}: the agent's state folder is inside it.`);
}

/** Deletes what `uid` left at the top of a shared temporary folder (with everything below it). */
async function removeOwnedBy(dir: string, uid: number): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const entry = path.join(dir, name);
    const owner = await lstat(entry).then((info) => info.uid, () => undefined);
    if (owner === uid) await rm(entry, { recursive: true, force: true });
  }
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await chown(dir, uid, gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const child = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(child, uid, gid);
    else if (!entry.isSymbolicLink()) await chown(child, uid, gid);
  }
}

/**
 * Wipes what one participant left for the next: stops CRD's host, ends the desktop session,
 * deletes the host registration (`host#*.json`) and the user's files in the shared temporary
 * folders, and recreates the desktop user's home from the skeleton. Each step is announced before it runs; the first failure ends the reset, naming it.
 */
export async function resetDesktop(target: ResetTarget, announce: (step: ResetStep) => void): Promise<ResetResult> {
  let step: ResetStep = 'reset-stop-crd';
  try {
    announce(step);
    await run(target.reset.stopCrd, []);
    announce((step = 'reset-end-session'));
    await run(target.reset.endSession, [1]);
    announce((step = 'reset-remove-host'));
    const names = await readdir(target.crdConfigDir).catch(() => [] as string[]);
    for (const name of names.filter((candidate) => /^host#.*\.json$/.test(candidate))) await rm(path.join(target.crdConfigDir, name), { force: true });
    const account = target.desktopUser
      ? await lookUpUser(target.desktopUser, target.passwdFile)
      : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, home: target.reset.home ?? '' };
    announce((step = 'reset-remove-temp'));
    if (target.desktopUser && account.uid === 0) throw new Error(`${target.desktopUser} is root: refusing to delete root's files.`);
    for (const dir of target.reset.tempDirs) await removeOwnedBy(dir, account.uid);
    announce((step = 'reset-recreate-home'));
    const home = target.reset.home ?? account.home;
    checkHome(home, target.stateDir);
    await rm(home, { recursive: true, force: true });
    await cp(target.reset.skelDir, home, { recursive: true, verbatimSymlinks: true });
    await chownTree(home, account.uid, account.gid);
    await chmod(home, 0o750);
    return { ok: true };
  } catch (error) {
    return { ok: false, message: `${step}: ${(error as Error).message}`.slice(0, 480) };
  }
}
