import { cp, chmod, lstat, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  Account,
  AccountFiles,
  AccountNumbering,
  IdRange,
  formatRange,
  lookUpUser,
  nextGeneration,
  subordinateRanges,
  supplementaryGroups,
} from './reset/accounts';
import { sysvIpcOwnedBy } from './reset/ipc';
import { mountsToUnmount, parseMountInfo } from './reset/mounts';
import { endProcesses } from './reset/processes';
import { runCommand } from './reset/run-command';
import { SweepTools, sweepOwnedFiles } from './reset/sweep';

export interface ResetTimeouts {
  /** Each command (systemctl, useradd…). */
  commandMs: number;
  /** Until no process of the old account is left. */
  endProcessesMs: number;
  /** Finding and deleting the old account's files. */
  sweepMs: number;
}

interface CommonResetConfig {
  /** Stops the desktop user's CRD host service (argv, no shell). */
  stopCrd: string[];
  /** What a new home starts from. */
  skelDir: string;
  /** Shared temporary folders (/tmp and the like): the old account's mounts below them go, and (home mode) its entries at their top. */
  tempDirs: string[];
  timeouts: ResetTimeouts;
}

/** The programs the account reset runs (argv prefixes, so tests and local mode can put stand-ins in). */
export interface AccountTools extends SweepTools {
  systemctl: string[];
  loginctl: string[];
  umount: string[];
  ipcrm: string[];
  useradd: string[];
  userdel: string[];
  usermod: string[];
  groupadd: string[];
  groupdel: string[];
}

/**
 * On a VM (a desktop user, the agent as root): each participant gets a fresh account under the
 * same name, with a uid and subordinate ids this VM never used before; the old one is ended,
 * unmounted and swept from every file system.
 */
export interface AccountResetConfig extends CommonResetConfig {
  kind: 'account';
  numbering: AccountNumbering;
  files: AccountFiles;
  tools: AccountTools;
  procDir: string;
  mountInfo: string;
  sysvipcDir: string;
  /** systemd-logind's linger flags, one file per user name. */
  lingerDir: string;
  /** Where a user's runtime folder is (/run/user/<uid>). */
  runtimeDirs: string;
  /** Searched for the old account's files, each on its own file system. */
  sweepRoots: string[];
}

/** Local mode (simulated VMs, no root): the home is deleted and copied from the skeleton; ending the session is a stand-in. */
export interface HomeResetConfig extends CommonResetConfig {
  kind: 'home';
  home: string;
  /** Ends the desktop session (argv, no shell); exit code 1 means "none was running". */
  endSession: string[];
}

export type ResetConfig = AccountResetConfig | HomeResetConfig;

export interface ResetTarget {
  reset: ResetConfig;
  desktopUser?: string;
  /** Where start-host keeps the host registration. */
  crdConfigDir: string;
  /** The agent's own state: never inside the home it deletes. */
  stateDir: string;
}

export type ResetStep =
  | 'reset-stop-crd'
  | 'reset-end-session'
  | 'reset-unmount'
  | 'reset-remove-ipc'
  | 'reset-remove-files'
  | 'reset-new-account'
  | 'reset-remove-host'
  | 'reset-recreate-home';
export type ResetResult = { ok: true } | { ok: false; message: string };
type Announce = (step: ResetStep) => void;

/** The lowest uid and gid the reset treats as a participant's: never root's or a system account's. */
const FIRST_REGULAR_ID = 1000;

/** Refuses a home whose deletion would hurt more than the desktop user: the root, a top-level folder, the agent's state. */
function checkHome(home: string, stateDir: string): void {
  const resolved = path.resolve(home);
  if (resolved !== home || resolved.split('/').filter(Boolean).length < 2)
    throw new Error(`Refusing to recreate ${home}: not a user's home folder.`);
  const relative = path.relative(resolved, path.resolve(stateDir));
  if (!relative.startsWith('..') && !path.isAbsolute(relative))
    throw new Error(`Refusing to recreate ${home}: the agent's state folder is inside it.`);
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

/** The account's ids as ranges: its uid and subordinate uids, its own group and subordinate gids. */
async function idsOf(
  account: Account,
  config: AccountResetConfig,
): Promise<{ uids: IdRange[]; gids: IdRange[]; subuids: IdRange[]; subgids: IdRange[] }> {
  const subuids = await subordinateRanges(account, config.files.subuid);
  const subgids = await subordinateRanges(account, config.files.subgid);
  const low = [...subuids, ...subgids].find((range) => range.first < FIRST_REGULAR_ID);
  if (low)
    throw new Error(
      `${account.name}'s subordinate ids start at ${low.first}: refusing to end or delete a system account's processes and files.`,
    );
  const ownGroup = account.gid >= FIRST_REGULAR_ID ? [{ first: account.gid, last: account.gid }] : [];
  return { uids: [{ first: account.uid, last: account.uid }, ...subuids], gids: [...ownGroup, ...subgids], subuids, subgids };
}

async function resetAccount(user: string, target: ResetTarget, config: AccountResetConfig, announce: Announce): Promise<void> {
  const { tools } = config;
  const run = (argv: string[], allowedExitCodes: number[] = []) =>
    runCommand(argv, { allowedExitCodes, timeoutMs: config.timeouts.commandMs });

  announce('reset-stop-crd');
  await run(config.stopCrd);

  announce('reset-end-session');
  const old = await lookUpUser(user, config.files.passwd);
  if (old.uid < FIRST_REGULAR_ID)
    throw new Error(`${user} has uid ${old.uid}: refusing to end or delete a system account's processes and files.`);
  checkHome(old.home, target.stateDir);
  const ids = await idsOf(old, config);
  // The session's cgroup first (it takes the user's services and lingering manager with it), then every process by uid.
  await run([...tools.loginctl, 'disable-linger', user], [1]);
  await run([...tools.loginctl, 'terminate-user', user], [1]);
  await run([...tools.systemctl, 'stop', `user@${old.uid}.service`, `user-${old.uid}.slice`], [5]);
  await endProcesses(old, ids.uids, config.timeouts.endProcessesMs, config.procDir);

  announce('reset-unmount');
  const runtimeDir = path.join(config.runtimeDirs, String(old.uid));
  const mounts = parseMountInfo(await readFile(config.mountInfo, 'utf8'));
  for (const mountPoint of mountsToUnmount(mounts, { home: old.home, runtimeDir, tempDirs: config.tempDirs }, ids.uids))
    await run([...tools.umount, '-l', mountPoint]);

  announce('reset-remove-ipc');
  for (const removal of await sysvIpcOwnedBy(config.sysvipcDir, ids.uids)) await run([...tools.ipcrm, ...removal], [1]);

  announce('reset-remove-files');
  // Linger is kept by name in a root-owned folder; crontabs, `at` jobs, mail and message queues are the old uid's files.
  await rm(path.join(config.lingerDir, user), { force: true });
  await sweepOwnedFiles(tools, { roots: config.sweepRoots, uids: ids.uids, gids: ids.gids }, config.timeouts.sweepMs);
  if (await exists(old.home)) throw new Error(`${old.home} is still there after the old account's files were deleted (not theirs?).`);

  announce('reset-new-account');
  const next = await nextGeneration(target.stateDir, config.numbering, old);
  const groups = await supplementaryGroups(user, config.files.group);
  const subordinates = [
    ...ids.subuids.map((range) => `--del-subuids=${formatRange(range)}`),
    ...ids.subgids.map((range) => `--del-subgids=${formatRange(range)}`),
  ];
  if (subordinates.length > 0) await run([...tools.usermod, ...subordinates, user]);
  await run([...tools.userdel, user]);
  await run([...tools.groupdel, user], [6]);
  await run([...tools.groupadd, '--gid', String(next.uid), user]);
  await run([
    ...tools.useradd,
    ...['--uid', String(next.uid), '--gid', String(next.uid)],
    ...(groups.length > 0 ? ['--groups', groups.join(',')] : []),
    // --no-log-init: lastlog and faillog are indexed by uid, and these uids are high.
    ...['--no-log-init', '--home-dir', old.home, '--create-home', '--skel', config.skelDir, '--shell', old.shell || '/bin/bash'],
    ...['--key', 'SUB_UID_COUNT=0', '--key', 'SUB_GID_COUNT=0'],
    user,
  ]);
  // Only a VM whose accounts had subordinate ids (rootless containers) gets them again: fresh ones.
  if (ids.subuids.length > 0 || ids.subgids.length > 0) {
    const range = formatRange(next.subordinate);
    await run([
      ...tools.usermod,
      ...(ids.subuids.length > 0 ? [`--add-subuids=${range}`] : []),
      ...(ids.subgids.length > 0 ? [`--add-subgids=${range}`] : []),
      user,
    ]);
  }
}

/** Deletes what the session's own uid left at the top of a shared temporary folder (with everything below it). */
async function removeOwnedBy(dir: string, uid: number): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const entry = path.join(dir, name);
    const owner = await lstat(entry).then(
      (info) => info.uid,
      () => undefined,
    );
    if (owner === uid) await rm(entry, { recursive: true, force: true });
  }
}

async function resetHome(target: ResetTarget, config: HomeResetConfig, announce: Announce): Promise<void> {
  const run = (argv: string[], allowedExitCodes: number[] = []) =>
    runCommand(argv, { allowedExitCodes, timeoutMs: config.timeouts.commandMs });
  announce('reset-stop-crd');
  await run(config.stopCrd);
  announce('reset-end-session');
  await run(config.endSession, [1]);
  announce('reset-remove-host');
  const names = await readdir(target.crdConfigDir).catch(() => [] as string[]);
  for (const name of names.filter((candidate) => /^host#.*\.json$/.test(candidate)))
    await rm(path.join(target.crdConfigDir, name), { force: true });
  announce('reset-remove-files');
  for (const dir of config.tempDirs) await removeOwnedBy(dir, process.getuid?.() ?? 0);
  announce('reset-recreate-home');
  checkHome(config.home, target.stateDir);
  await rm(config.home, { recursive: true, force: true });
  await cp(config.skelDir, config.home, { recursive: true, verbatimSymlinks: true });
  await chmod(config.home, 0o750);
}

/**
 * Wipes what one participant left for the next (see docs/architecture.md, "What a reset
 * guarantees"). Each step is announced before it runs; the first failure ends the reset,
 * naming it, and the VM is not handed out.
 */
export async function resetDesktop(target: ResetTarget, announce: Announce): Promise<ResetResult> {
  let step: ResetStep = 'reset-stop-crd';
  const track: Announce = (next) => announce((step = next));
  try {
    if (target.reset.kind === 'account') {
      if (!target.desktopUser) throw new Error('An account reset needs the desktop user (LABLINK_DESKTOP_USER).');
      await resetAccount(target.desktopUser, target, target.reset, track);
    } else {
      await resetHome(target, target.reset, track);
    }
    return { ok: true };
  } catch (error) {
    return { ok: false, message: `${step}: ${(error as Error).message}`.slice(0, 480) };
  }
}
