import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, lchown, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SYSTEM_ACCOUNT_RESET } from '../../agent/agent-config';
import { AccountResetConfig, AccountTools, ResetStep, resetDesktop } from '../../agent/desktop-reset';
import { processesOf } from '../../agent/reset/processes';
import { waitFor } from '../support/fixtures';

// Processes and files of another user exist only where root can make them; jest runs as root here and in CI.
const asRoot = process.getuid?.() === 0 ? describe : describe.skip;

const RECORDER = `require('fs').appendFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)) + '\\n')`;
const UID_BASE = 5_000_000;

/**
 * A desktop user `desk` in files of its own (uid and gid differ, a subordinate range), a home
 * and a temporary folder under one throwaway root the sweep searches, and recording stand-ins
 * for the account and session commands; find, rm, the kills and /proc are real.
 */
async function accountFixture() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lablink-account-reset-'));
  // Ids nobody else on this machine uses, so kill(-1) as the old uid reaches this test's processes only.
  const uid = 3_000_000 + Math.floor(Math.random() * 900_000);
  const gid = uid + 7;
  const sub = { first: uid + 1000, last: uid + 1099 };
  const home = path.join(dir, 'home', 'desk');
  const tmp = path.join(dir, 'tmp');
  const commandLog = path.join(dir, 'commands.jsonl');
  for (const folder of ['skel', 'etc', 'state', 'linger', 'sysvipc', 'spool', tmp, home])
    await mkdir(path.resolve(dir, folder), { recursive: true });
  await writeFile(path.join(dir, 'skel', '.bashrc'), 'PS1=$ \n');
  await writeFile(path.join(dir, 'etc', 'passwd'), `root:x:0:0:root:/root:/bin/bash\ndesk:x:${uid}:${gid}::${home}:/bin/bash\n`);
  await writeFile(path.join(dir, 'etc', 'group'), `root:x:0:\ncrd:x:999:desk,other\ndesk:x:${gid}:\n`);
  await writeFile(path.join(dir, 'etc', 'subuid'), `other:100000:65536\ndesk:${sub.first}:100\n`);
  await writeFile(path.join(dir, 'etc', 'subgid'), `desk:${sub.first}:100\n`);
  await writeFile(path.join(dir, 'mountinfo'), '22 1 8:1 / / rw - ext4 /dev/root rw\n');
  await writeFile(path.join(dir, 'linger', 'desk'), '');
  for (const folder of [home, path.join(dir, 'home')]) await chown(folder, folder === home ? uid : 0, folder === home ? gid : 0);
  const recorder = (name: string) => [process.execPath, '-e', RECORDER, commandLog, name];
  const tools = Object.fromEntries(
    Object.keys(SYSTEM_ACCOUNT_RESET.tools).map((name) => [name, ['find', 'rm'].includes(name) ? [name] : recorder(name)]),
  ) as unknown as AccountTools;
  const config: AccountResetConfig = {
    ...SYSTEM_ACCOUNT_RESET,
    kind: 'account',
    stopCrd: recorder('stop-crd'),
    skelDir: path.join(dir, 'skel'),
    tempDirs: [tmp],
    timeouts: { commandMs: 10_000, endProcessesMs: 10_000, sweepMs: 30_000 },
    numbering: { uidBase: UID_BASE, subordinateBase: 6_000_000 },
    files: {
      passwd: path.join(dir, 'etc', 'passwd'),
      group: path.join(dir, 'etc', 'group'),
      subuid: path.join(dir, 'etc', 'subuid'),
      subgid: path.join(dir, 'etc', 'subgid'),
    },
    tools,
    mountInfo: path.join(dir, 'mountinfo'),
    sysvipcDir: path.join(dir, 'sysvipc'),
    lingerDir: path.join(dir, 'linger'),
    runtimeDirs: path.join(dir, 'run-user'),
    sweepRoots: [dir],
  };
  const steps: ResetStep[] = [];
  return {
    dir,
    uid,
    gid,
    sub,
    home,
    tmp,
    config,
    steps,
    reset: (overrides: Partial<AccountResetConfig> = {}) =>
      resetDesktop(
        {
          reset: { ...config, ...overrides },
          desktopUser: 'desk',
          crdConfigDir: path.join(home, '.config', 'chrome-remote-desktop'),
          stateDir: path.join(dir, 'state'),
        },
        (step) => steps.push(step),
      ),
    commands: async (): Promise<string[]> =>
      existsSync(commandLog)
        ? (await readFile(commandLog, 'utf8'))
            .split('\n')
            .filter(Boolean)
            .map((line) => (JSON.parse(line) as string[]).join(' '))
        : [],
    cleanUp: () => rm(dir, { recursive: true, force: true }),
  };
}

asRoot('a fresh desktop account per participant (as root: real processes, find and rm; stand-ins for the account commands)', () => {
  let fixture: Awaited<ReturnType<typeof accountFixture>>;
  const children: ChildProcess[] = [];
  beforeEach(async () => {
    fixture = await accountFixture();
  });
  afterEach(async () => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    await fixture.cleanUp();
  });

  function runAs(uid: number, gid: number, script: string): ChildProcess {
    const child = spawn('/bin/sh', ['-c', script], { uid, gid, stdio: 'ignore', cwd: '/' });
    children.push(child);
    return child;
  }

  it('ends every process of the old account, one that keeps forking and one running as a subordinate uid too', async () => {
    const { uid, gid, sub } = fixture;
    runAs(uid, gid, 'while :; do sleep 60 & sleep 0.01; done');
    runAs(sub.first + 5, sub.first + 5, 'sleep 60');
    const ranges = [{ first: uid, last: uid }, sub];
    await waitFor(async () => (await processesOf(ranges)).length >= 3, 'the participant’s processes to run');

    expect(await fixture.reset()).toEqual({ ok: true });
    expect(await processesOf(ranges)).toEqual([]);
    expect(fixture.steps).toEqual([
      'reset-stop-crd',
      'reset-end-session',
      'reset-unmount',
      'reset-remove-ipc',
      'reset-remove-files',
      'reset-new-account',
    ]);
    expect((await fixture.commands()).slice(0, 4)).toEqual([
      'stop-crd',
      'loginctl disable-linger desk',
      'loginctl terminate-user desk',
      `systemctl stop user@${uid}.service user-${uid}.slice`,
    ]);
  });

  it('deletes the old account’s files everywhere without following a link: root-owned targets keep owner, mode and content', async () => {
    const { dir, uid, gid, sub, home, tmp } = fixture;
    const target = path.join(dir, 'etc', 'shadow-like');
    await writeFile(target, 'root:secret\n', { mode: 0o600 });
    const rootDir = path.join(dir, 'etc', 'sudoers.d');
    await mkdir(rootDir);
    await writeFile(path.join(rootDir, 'keep'), 'root rule\n');
    // Links planted in the home and in /tmp, owned by the participant, at a root-owned file and folder.
    await symlink(target, path.join(home, '.bashrc'));
    await symlink(rootDir, path.join(home, '.config'));
    await lchown(path.join(home, '.bashrc'), uid, gid);
    const theirs = path.join(tmp, 'theirs');
    await mkdir(theirs);
    await symlink(rootDir, path.join(theirs, 'sub'));
    await chown(theirs, uid, gid);
    await symlink(target, path.join(tmp, 'link-to-shadow'));
    await lchown(path.join(tmp, 'link-to-shadow'), uid, gid);
    // Left as a subordinate uid, as the old group, in a crontab-like spool, and a name with a newline.
    await writeFile(path.join(tmp, 'container-file'), 'x');
    await chown(path.join(tmp, 'container-file'), sub.first + 3, sub.first + 3);
    await writeFile(path.join(tmp, 'group-file'), 'x');
    await chown(path.join(tmp, 'group-file'), 0, gid);
    await writeFile(path.join(dir, 'spool', 'desk'), '* * * * * cat ~next/secret\n');
    await chown(path.join(dir, 'spool', 'desk'), uid, gid);
    await writeFile(path.join(tmp, 'odd\nname'), 'x');
    await chown(path.join(tmp, 'odd\nname'), uid, gid);
    await writeFile(path.join(tmp, 'root-file'), 'stays');

    expect(await fixture.reset()).toEqual({ ok: true });
    for (const gone of [home, theirs, 'link-to-shadow', 'container-file', 'group-file', 'odd\nname'].map((name) => path.resolve(tmp, name)))
      expect(existsSync(gone)).toBe(false);
    expect(existsSync(path.join(dir, 'spool', 'desk'))).toBe(false);
    expect(existsSync(path.join(dir, 'linger', 'desk'))).toBe(false);
    const kept = await stat(target);
    expect([kept.uid, kept.gid, kept.mode & 0o777]).toEqual([0, 0, 0o600]);
    expect(await readFile(target, 'utf8')).toBe('root:secret\n');
    expect(await readFile(path.join(rootDir, 'keep'), 'utf8')).toBe('root rule\n');
    expect((await stat(rootDir)).uid).toBe(0);
    expect(await readFile(path.join(tmp, 'root-file'), 'utf8')).toBe('stays');
  });

  it('lazily unmounts what the participant mounted, deepest first, and removes their System V IPC objects', async () => {
    const { dir, uid, sub, home, tmp } = fixture;
    const line = (id: number, mountPoint: string, fsType: string, superOptions: string) =>
      `${id} 22 0:${id} / ${mountPoint.replace(/ /g, '\\040')} rw,nosuid - ${fsType} src ${superOptions}`;
    await writeFile(
      path.join(dir, 'mountinfo'),
      [
        '22 1 8:1 / / rw - ext4 /dev/root rw',
        line(30, tmp, 'tmpfs', 'rw'),
        line(31, `${home}/my drive`, 'fuse.sshfs', `rw,user_id=${uid},group_id=1`),
        line(32, `${home}/my drive/inner`, 'tmpfs', 'rw'),
        line(33, '/elsewhere/fuse', 'fuse', `rw,user_id=${sub.first + 1},group_id=1`),
        line(34, path.join(dir, 'run-user', String(uid)), 'tmpfs', 'rw'),
        line(35, `${tmp}/container`, 'overlay', 'rw'),
        line(36, '/mnt/someone-else', 'fuse', 'rw,user_id=1000,group_id=1000'),
      ].join('\n'),
    );
    await writeFile(
      path.join(dir, 'sysvipc', 'shm'),
      `       key      shmid perms size cpid lpid nattch   uid   gid  cuid  cgid\n   0 11 600 4096 1 1 0 ${uid} 1 ${uid} 1\n   0 12 600 4096 1 1 0 1000 1 1000 1\n`,
    );
    await writeFile(
      path.join(dir, 'sysvipc', 'msg'),
      `       key      msqid perms cbytes qnum lspid lrpid   uid   gid  cuid  cgid\n   0 21 600 0 0 0 0 0 0 ${sub.first + 2} 1\n`,
    );
    await writeFile(
      path.join(dir, 'sysvipc', 'sem'),
      `       key      semid perms nsems   uid   gid  cuid  cgid\n   0 31 600 1 1000 1 1000 1\n`,
    );

    expect(await fixture.reset()).toEqual({ ok: true });
    const commands = await fixture.commands();
    expect(commands.filter((command) => command.startsWith('umount'))).toEqual([
      `umount -l ${home}/my drive/inner`,
      `umount -l ${home}/my drive`,
      `umount -l ${path.join(dir, 'run-user', String(uid))}`,
      `umount -l ${tmp}/container`,
      'umount -l /elsewhere/fuse',
    ]);
    expect(commands.filter((command) => command.startsWith('ipcrm'))).toEqual(['ipcrm -m 11', 'ipcrm -q 21']);
  });

  it('makes the new account with a uid never used before on this VM, the old groups, and fresh subordinate ids', async () => {
    const { dir, uid, sub, home } = fixture;
    expect(await fixture.reset()).toEqual({ ok: true });
    const first = UID_BASE + 1;
    expect((await fixture.commands()).slice(-6)).toEqual([
      `usermod --del-subuids=${sub.first}-${sub.last} --del-subgids=${sub.first}-${sub.last} desk`,
      'userdel desk',
      'groupdel desk',
      `groupadd --gid ${first} desk`,
      `useradd --uid ${first} --gid ${first} --groups crd --no-log-init --home-dir ${home} --create-home --skel ${path.join(dir, 'skel')} --shell /bin/bash --key SUB_UID_COUNT=0 --key SUB_GID_COUNT=0 desk`,
      `usermod --add-subuids=6065536-6131071 --add-subgids=6065536-6131071 desk`,
    ]);
    expect(uid).not.toBe(first);
    // The next reset, after useradd made the account with that uid: one more.
    const passwd = path.join(dir, 'etc', 'passwd');
    await writeFile(passwd, `desk:x:${first}:${first}::${home}:/bin/bash\n`);
    expect(await fixture.reset()).toEqual({ ok: true });
    expect((await fixture.commands()).at(-2)).toContain(`--uid ${first + 1} `);
    // Even with the agent's state folder lost, the current account's uid is never handed out again.
    await rm(path.join(dir, 'state'), { recursive: true });
    await mkdir(path.join(dir, 'state'));
    await writeFile(passwd, `desk:x:${first + 1}:${first + 1}::${home}:/bin/bash\n`);
    expect(await fixture.reset()).toEqual({ ok: true });
    expect((await fixture.commands()).at(-2)).toContain(`--uid ${first + 2} `);
  });

  it.each([
    [
      'a command that cannot start',
      { tools: { loginctl: ['/nonexistent/loginctl'] } },
      'reset-end-session: /nonexistent/loginctl disable-linger desk failed (ENOENT)',
    ],
    [
      'a command that runs past its time',
      { stopCrd: ['sleep', '5'], timeouts: { commandMs: 300, endProcessesMs: 10_000, sweepMs: 30_000 } },
      'reset-stop-crd: sleep 5 timed out after 0.3 s',
    ],
    [
      'a sweep that runs past its time',
      {
        tools: { find: [process.execPath, '-e', 'setTimeout(() => {}, 5000)'] },
        timeouts: { commandMs: 10_000, endProcessesMs: 10_000, sweepMs: 300 },
      },
      'reset-remove-files:',
    ],
  ])('fails naming the step on %s, and makes no new account', async (_case, overrides, message) => {
    const config = {
      ...overrides,
      tools: { ...fixture.config.tools, ...(overrides as { tools?: Partial<AccountTools> }).tools },
    } as Partial<AccountResetConfig>;
    const result = await fixture.reset(config);
    expect(result.ok).toBe(false);
    expect((result as { message: string }).message).toContain(message);
    expect((await fixture.commands()).some((command) => command.startsWith('useradd'))).toBe(false);
  });

  it.each([
    ['uid', 'passwd', `desk:x:998:998::{home}:/bin/bash\n`, 'desk has uid 998'],
    ['subordinate ids', 'subuid', 'desk:0:65536\n', "desk's subordinate ids start at 0"],
  ])('refuses to treat a system account’s processes and files as a participant’s (by %s)', async (_case, file, text, reason) => {
    await writeFile(path.join(fixture.dir, 'etc', file), text.replace('{home}', fixture.home));
    expect(await fixture.reset()).toEqual({
      ok: false,
      message: `reset-end-session: ${reason}: refusing to end or delete a system account's processes and files.`,
    });
    expect(existsSync(fixture.home)).toBe(true);
  });
});
