/**
 * The reset against a hostile participant: A, as the desktop user and with only what is on the
 * VM, leaves everything an unprivileged account can leave; the admin releases the VM through the
 * allocator; the agent resets it; B gets it and start-host runs for B. Then nothing of A may run,
 * be scheduled, mounted or stored, no root-owned file may have changed, and B may not read the
 * files that identify the VM.
 */
import { randomBytes } from 'node:crypto';
import { CRD_STAND_IN_LOG } from './apt-repo';
import { DESKTOP_USER } from '../lib/user-data';
import type { Container } from './container';
import { waitFor } from './util';

interface CheckList {
  add(name: string, ok: boolean, detail?: unknown): boolean;
}

/** Root-owned files a participant would like to own or change: owner and mode must stay, and content where the reset does not rewrite it. */
const ROOT_FILES = [
  '/etc',
  '/etc/passwd',
  '/etc/shadow',
  '/etc/group',
  '/etc/sudoers.d/lablink-crd',
  '/opt/lablink/agent.js',
  '/etc/lablink/agent.env',
];
const UNCHANGED_CONTENT = ['/etc/sudoers.d/lablink-crd', '/opt/lablink/agent.js', '/etc/lablink/agent.env'];
/** Files that identify the VM: B must not read them. */
const IDENTITY_FILES = ['/run/lablink-identity.json', '/etc/lablink/agent.env', '/var/lib/lablink-agent/registered'];
/** Where A leaves files outside the home: every place a user may write to. */
const SHARED_PLACES = ['/tmp', '/var/tmp', '/dev/shm', '/run/lock', '/var/crash', '/var/log/crd-stand-in'];
const RESET_TIMEOUT_MS = 120_000;
/** Where A mounts a FUSE file system, below its home. */
const FUSE_MOUNT = `/home/${DESKTOP_USER}/fuse-mnt`;
/**
 * What A runs. Each attack reports `attack=<name> <outcome>` and never stops the others; the
 * walls (cron.deny, at.deny) may refuse some, which is the first defence.
 */
const PLANT = String.raw`
report() { echo "attack=$1 $2"; }
try() { local name=$1; shift; if out=$("$@" 2>&1); then report "$name" ok; else report "$name" "refused: $(echo "$out" | tail -n1)"; fi; }
cd "$HOME"
try crontab sh -c 'echo "* * * * * cat /home/*/secret* > /tmp/stolen-by-cron" | crontab -'
try at sh -c 'echo "cat /home/*/secret* > /tmp/stolen-by-at" | at now + 2 minutes'
mkdir -p ~/.config/systemd/user
printf '[Service]\nExecStart=/bin/sh -c "cat %%h/secret* > /tmp/stolen-by-unit"\n' > ~/.config/systemd/user/spy.service
[ -d "/run/user/$(id -u)" ] && try runtime-unit sh -c 'mkdir -p /run/user/$(id -u)/systemd/user && cp ~/.config/systemd/user/spy.service /run/user/$(id -u)/systemd/user/'
# A process that keeps forking, and processes in user namespaces (one as a subordinate uid).
setsid sh -c 'while :; do sleep 600 & sleep 0.2; done' </dev/null >/dev/null 2>&1 &
setsid unshare --user --map-root-user sh -c 'touch /tmp/from-userns; exec sleep 600' </dev/null >/dev/null 2>&1 &
setsid unshare --user --map-auto --setuid 1000 --setgid 1000 sh -c 'touch /tmp/from-subuid; exec sleep 600' </dev/null >/dev/null 2>&1 &
# Links aimed at root-owned files, where the reset deletes and creates.
rm -f ~/.bashrc ~/.profile
ln -s /etc/passwd ~/.bashrc
ln -s /opt/lablink/agent.js ~/.profile
ln -s /etc ~/.config/etc-link
mkdir -p /tmp/a-folder && ln -s /etc/sudoers.d /tmp/a-folder/sudoers && ln -s /etc/shadow /tmp/a-link-to-shadow
# Files everywhere a user may write, and odd names.
for place in ${SHARED_PLACES.join(' ')}; do [ -w "$place" ] && echo "A was here" > "$place/left-by-a" && report "file:$place" ok; done
touch "/tmp/odd
name" "$HOME/-rf"
try mqueue touch /dev/mqueue/left-by-a
try sysv-shm ipcmk -M 4096
# A FUSE mount in the home (bindfs, through the setuid fusermount3), as any user may on the VM.
mkdir -p ~/fuse-src ~/fuse-mnt && echo inside > ~/fuse-src/file
try fuse bindfs --no-allow-other ~/fuse-src ~/fuse-mnt
sleep 1
stat -c 'owner %n %u' /tmp/from-userns /tmp/from-subuid
echo "uid=$(id -u)"
`;

/**
 * A's attempt to linger, from a logind session of A's (a service with a PAM session: pam_systemd
 * registers it), so that logind asks polkit and the polkit rule is what answers.
 */
async function lingerFromASession(container: Container): Promise<{ session: string; outcome: string }> {
  const attempt = await container.exec(
    [
      'systemd-run',
      '--quiet',
      '--wait',
      '--pipe',
      '--property=PAMName=login',
      `--property=User=${DESKTOP_USER}`,
      'sh',
      '-c',
      'echo "session=$XDG_SESSION_ID"; loginctl enable-linger 2>&1 && echo linger=ok',
    ],
    { allowFailure: true },
  );
  const session = /^session=(.*)$/m.exec(attempt.stdout)?.[1] ?? '';
  return { session, outcome: /^linger=ok$/m.test(attempt.stdout) ? 'ok' : `refused: ${attempt.stdout.trim().split('\n').pop() ?? ''}` };
}

type IdRange = { first: number; last: number };
const within = (id: number, ranges: IdRange[]) => ranges.some((range) => id >= range.first && id <= range.last);

async function rootFileStates(container: Container): Promise<string> {
  return (await container.exec(['sh', '-c', `stat -c '%n %u:%g %a' ${ROOT_FILES.join(' ')}; sha256sum ${UNCHANGED_CONTENT.join(' ')}`]))
    .stdout;
}

async function vmState(
  allocatorUrl: string,
  admin: Record<string, string>,
  name: string,
): Promise<{ state: string; failure?: string | null } | undefined> {
  const list = (await (await fetch(`${allocatorUrl}/api/vms`, { headers: admin })).json()) as {
    vms: { hostname: string; state: string; failure?: string | null }[];
  };
  return list.vms.find((row) => row.hostname === name);
}

/** Live processes (pid and uids) any of whose uids is in the ranges. */
async function processesOf(container: Container, ranges: IdRange[]): Promise<string[]> {
  const status = await container.exec(['sh', '-c', "grep -H '^Uid:' /proc/[0-9]*/status 2>/dev/null; true"]);
  return status.stdout.split('\n').filter((line) =>
    line
      .split(/\s+/)
      .slice(1)
      .some((field) => within(Number(field), ranges)),
  );
}

/** `find` tests for files owned by the ids, each range as two numeric tests. */
function ownedBy(ranges: IdRange[]): string {
  return ranges.map((range) => `\\( -uid +${range.first - 1} -uid -${range.last + 1} \\)`).join(' -o ');
}

export async function hostileParticipant(
  container: Container,
  allocatorUrl: string,
  admin: Record<string, string>,
  checks: CheckList,
): Promise<void> {
  const vmName = (await container.exec(['hostname'])).stdout.trim();
  const before = await rootFileStates(container);
  const subuid = (await container.exec(['sh', '-c', `grep "^${DESKTOP_USER}:" /etc/subuid || true`])).stdout.trim().split(':');
  // nspawn's /dev has no fuse node; the VM's has one that every user may open (udev's 0666).
  await container.exec(['sh', '-c', '[ -e /dev/fuse ] || mknod -m 666 /dev/fuse c 10 229']);
  const planted = await container.exec(['bash', '-c', PLANT], { user: DESKTOP_USER, allowFailure: true, timeoutMs: 60_000 });
  const uid = Number(/^uid=(\d+)$/m.exec(planted.stdout)?.[1]);
  const ranges: IdRange[] = [
    { first: uid, last: uid },
    ...(subuid.length === 3 ? [{ first: Number(subuid[1]), last: Number(subuid[1]) + Number(subuid[2]) - 1 }] : []),
  ];
  const linger = await lingerFromASession(container);
  const attacks: Record<string, string> = {
    ...Object.fromEntries([...planted.stdout.matchAll(/^attack=(\S+) (.*)$/gm)].map((match) => [match[1], match[2]])),
    linger: linger.outcome,
  };
  const running = await processesOf(container, ranges);
  const asSubordinate = await processesOf(container, ranges.slice(1));
  const owners = [...planted.stdout.matchAll(/^owner (\S+) (\d+)$/gm)].map((match) => `${match[1]}=${match[2]}`);
  console.log(
    `rehearsal: A's attacks: ${JSON.stringify(attacks)}; ${running.length} processes of A, ${asSubordinate.length} as a subordinate uid; ${owners.join(' ')}`,
  );
  checks.add(
    `hostile A: planted its attacks as ${DESKTOP_USER} (uid ${uid}, subordinate ${JSON.stringify(ranges.slice(1))}): processes of A run, in a user namespace as a subordinate uid too`,
    Number.isInteger(uid) && running.length > 3 && asSubordinate.length > 0 && owners.length === 2,
    { attacks, running, owners, stderr: planted.stderr.slice(-500) },
  );
  const fuseMounted = (await container.exec(['cat', '/proc/self/mountinfo'])).stdout
    .split('\n')
    .filter((line) => line.split(' ')[4] === FUSE_MOUNT);
  checks.add(
    `hostile A: a FUSE file system (bindfs) is mounted in A's home before the release (${FUSE_MOUNT})`,
    attacks.fuse === 'ok' && fuseMounted.some((line) => / - fuse[. ]/.test(line)),
    { fuse: attacks.fuse, fuseMounted },
  );
  checks.add(
    'hostile A: the second walls refuse a crontab and an at job',
    ['crontab', 'at'].every((name) => attacks[name]?.startsWith('refused')),
    attacks,
  );
  checks.add(
    `hostile A: polkit refuses A self-lingering from A's own logind session (${linger.session ? `session ${linger.session}` : 'no session'})`,
    linger.session !== '' && /access denied|not authorized|permission/i.test(linger.outcome),
    linger,
  );

  const released = Date.now();
  const release = await fetch(`${allocatorUrl}/api/vms/${vmName}/release`, { method: 'POST', headers: admin });
  checks.add('hostile A: the admin releases the VM through the allocator', release.status === 200, await release.text());
  const settled = await waitFor(
    'the reset to end',
    async () => {
      const row = await vmState(allocatorUrl, admin, vmName);
      return row?.failure || row?.state === 'waiting' ? row : undefined;
    },
    RESET_TIMEOUT_MS,
  ).catch(() => undefined);
  const seconds = (Date.now() - released) / 1000;
  console.log(
    `rehearsal: reset of ${vmName} after a hostile participant: ${seconds.toFixed(1)} s from release to waiting (the workshop setup again included)`,
  );
  if (
    !checks.add(
      `hostile A: the reset ends with the VM waiting again (${seconds.toFixed(1)} s)`,
      settled?.state === 'waiting' && !settled.failure,
      settled,
    )
  )
    return;

  const code = `4/0AanRJrj${randomBytes(12).toString('hex')}`;
  const response = await fetch(`${allocatorUrl}/api/request_vm`, {
    method: 'POST',
    headers: { accept: 'application/json' },
    body: new URLSearchParams({
      email: 'participant-b@example.com',
      crd_command: `DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="${code}" --redirect-url="https://remotedesktop.google.com/_/oauthredirect" --name=$(hostname)`,
    }),
  });
  checks.add('hostile B: the form assigns the reset VM to participant B', response.status === 200, await response.text());
  const startHost = await waitFor(
    'start-host for B',
    async () => (await container.readFile(CRD_STAND_IN_LOG).catch(() => '')).split('\n').find((line) => line.includes(code)),
    60_000,
  ).catch(() => undefined);
  const uidB = Number((await container.exec(['id', '-u', DESKTOP_USER])).stdout.trim());
  checks.add(
    `hostile B: start-host ran for B as a fresh ${DESKTOP_USER} account (uid ${uidB}: neither A's uid nor A's subordinate ids)`,
    startHost !== undefined && !within(uidB, ranges),
    { startHost, uidB, ranges },
  );

  const left = await processesOf(container, ranges);
  checks.add("hostile: none of A's processes runs (forking, in user namespaces, as subordinate uids)", left.length === 0, left);
  const jobs = await container.exec([
    'sh',
    '-c',
    `crontab -l -u ${DESKTOP_USER} 2>&1; atq; ls /var/spool/cron/crontabs /var/spool/cron/atjobs /var/lib/systemd/linger 2>/dev/null; true`,
  ]);
  checks.add(
    "hostile: none of A's jobs is scheduled (crontab, at, linger)",
    !jobs.stdout.split('\n').includes(DESKTOP_USER) && !/^\d+\s/m.test(jobs.stdout),
    jobs.stdout,
  );
  const mounts = (await container.exec(['cat', '/proc/self/mountinfo'])).stdout.split('\n');
  const leftMounts = mounts.filter(
    (line) => line.includes(` /home/${DESKTOP_USER}/`) || within(Number(/user_id=(\d+)/.exec(line)?.[1] ?? -1), ranges),
  );
  checks.add(`hostile: none of A's mounts is left (FUSE in the home: ${attacks.fuse ?? 'not tried'})`, leftMounts.length === 0, leftMounts);
  const roots = ['/', '/tmp', '/var/tmp', '/dev/shm', '/run', '/run/lock', '/dev/mqueue'];
  const files = await container.exec(
    ['sh', '-c', `find ${roots.join(' ')} -xdev \\( ${ownedBy(ranges)} \\) -print 2>/dev/null | head -n 20`],
    { allowFailure: true },
  );
  const ipc = (await container.exec(['sh', '-c', 'cat /proc/sysvipc/shm /proc/sysvipc/msg /proc/sysvipc/sem'])).stdout.split('\n').slice(1);
  const ipcOfA = ipc.filter((line) =>
    line
      .trim()
      .split(/\s+/)
      .some((field) => within(Number(field), ranges.slice(0, 1))),
  );
  checks.add(
    "hostile: none of A's files is left anywhere (home, temp folders, /run/lock, /dev/mqueue, subordinate uids), nor its IPC",
    files.stdout.trim() === '' && ipcOfA.length === 0,
    { files: files.stdout, ipcOfA },
  );
  const names = [
    '/tmp/a-folder',
    '/tmp/a-link-to-shadow',
    '/tmp/from-userns',
    '/tmp/from-subuid',
    '/dev/mqueue/left-by-a',
    ...SHARED_PLACES.map((place) => `${place}/left-by-a`),
  ];
  const plantedNames = await container.exec(['sh', '-c', `ls -d ${names.join(' ')} 2>/dev/null; true`]);
  checks.add("hostile: A's planted names are gone", plantedNames.stdout.trim() === '', plantedNames.stdout);
  const after = await rootFileStates(container);
  checks.add(
    'hostile: no root-owned file changed owner or mode, nor the sudo rule, the agent and its settings their content (the links were never followed)',
    after === before,
    { before, after },
  );
  const spied = await container.exec(['sh', '-c', 'ls /tmp/stolen-by-* 2>/dev/null; true']);
  checks.add("hostile: nothing of A's ran in B's session", spied.stdout.trim() === '', spied.stdout);
  const readable = await container.exec(
    ['sh', '-c', `for file in ${IDENTITY_FILES.join(' ')}; do cat "$file" >/dev/null 2>&1 && echo "B reads $file"; done; true`],
    { user: DESKTOP_USER },
  );
  checks.add('hostile B: the files that identify the VM are not readable by B', readable.stdout.trim() === '', readable.stdout);
}
