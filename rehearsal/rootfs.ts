/**
 * A cached Debian bookworm root filesystem for the boot rehearsal.
 *
 * Built once with debootstrap (minbase + systemd), then the desktop packages of the
 * user-data are installed with the same `apt-get install --no-install-recommends` the
 * user-data runs, so that in a rehearsal (with an empty local apt repository) that line
 * is a quick no-op. The build happens in a temporary directory that is renamed into
 * place only when complete: an interrupted build is never taken for a cache.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { VM_PACKAGES } from '../lib/user-data';
import { commandExists, onCleanup, removeTree, run, secondsSince } from './util';

export const SUITE = 'bookworm';

/** What the rehearsal itself needs inside the container. */
export const BASE_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'sudo',
  'curl',
  'ca-certificates',
  'xz-utils',
  'iptables',
  'gzip',
  'coreutils',
] as const;

/** What a hostile participant finds on the VM and uses against the reset (rehearsal/hostile-participant.ts). */
export const ATTACK_PACKAGES = ['cron', 'at', 'fuse3', 'bindfs', 'uidmap', 'polkitd', 'libpam-systemd'] as const;

/** The packages the user-data installs, so its `apt-get install` finds them in place. */
export const DESKTOP_PACKAGES = VM_PACKAGES;

/** What runs the user-data as on an Ubuntu cloud image: Debian's cloud-init (22.4 on bookworm); the network is systemd-networkd's. */
export const CLOUD_PACKAGES = ['cloud-init'] as const;

/** The VM's network interface (a veth the rehearsal's namespace provides, see netns.ts), configured by systemd-networkd. */
export const VM_INTERFACE = 'ens5';

/**
 * Files the recipe writes into the rootfs. cloud-init looks only for the NoCloud seed the
 * rehearsal writes (no probing of other clouds), leaves the network to the .network file below
 * (its fallback would ask DHCP, which nobody answers here) and keeps the rehearsal's apt source
 * (it would write Debian's mirror, unreachable here), and leaves the locale alone (minbase has no
 * `locales` package, which Ubuntu's image has): on EC2 the datasource, DHCP and the mirror are AWS's.
 */
const ROOTFS_FILES: Record<string, string> = {
  '/etc/cloud/cloud.cfg.d/90-lablink-rehearsal.cfg':
    'datasource_list: [NoCloud, None]\nnetwork: {config: disabled}\napt: {preserve_sources_list: true}\nlocale: false\n',
  [`/etc/systemd/network/10-${VM_INTERFACE}.network`]: `[Match]\nName=${VM_INTERFACE}\n\n[Network]\nAddress=10.10.0.2/24\n`,
};

/** Bump when the recipe changes in a way the package lists do not show. */
const RECIPE_VERSION = 2;

export interface RootfsBuildInfo {
  builtAt: string;
  mirror: string;
  suite: string;
  basePackages: readonly string[];
  desktopPackages: readonly string[];
  /** Seconds per step: debootstrap, desktop packages, total. */
  seconds: { debootstrap: number; desktop: number; total: number };
  /** Apparent size of the finished rootfs (du -sb). */
  sizeBytes: number;
  /** Size before the desktop packages were added. */
  baseSizeBytes: number;
}

export interface EnsureRootfsOptions {
  log?: (message: string) => void;
  /** Whole build limit; debootstrap plus apt usually take a few minutes. */
  timeoutMs?: number;
  /** Override the mirror; by default the host's own Debian mirror is used. */
  mirror?: string;
}

/**
 * Returns the path of a ready rootfs, building it first if the cache has none.
 * The returned directory must be treated as read-only (boot it through an overlay).
 */
export async function ensureRootfs(cacheDir: string, options: EnsureRootfsOptions = {}): Promise<string> {
  const log = options.log ?? (() => undefined);
  const finalDir = join(cacheDir, `${SUITE}-${cacheKey()}`);
  const rootfs = join(finalDir, 'rootfs');
  if (existsSync(join(finalDir, 'build-info.json'))) return rootfs;

  mkdirSync(cacheDir, { recursive: true });
  removeAbandonedBuilds(cacheDir, log);
  await ensureHostTools(log);

  const mirror = options.mirror ?? hostDebianMirror();
  const deadline = Date.now() + (options.timeoutMs ?? 30 * 60_000);
  const left = (): number => Math.max(1_000, deadline - Date.now());

  // The pid in the name lets a later run tell an abandoned build from a running one.
  const tmp = await mkdtemp(join(cacheDir, `.building-${process.pid}-`));
  const discard = onCleanup(() => removeTree(tmp));
  const target = join(tmp, 'rootfs');
  const started = Date.now();
  try {
    log(`debootstrap ${SUITE} from ${mirror} into ${target}`);
    await run('debootstrap', ['--variant=minbase', `--include=${BASE_PACKAGES.join(',')}`, SUITE, target, mirror], { timeoutMs: left() });
    const debootstrapSeconds = secondsSince(started);
    const baseSizeBytes = await sizeOf(target);
    log(`debootstrap done in ${debootstrapSeconds} s, ${mb(baseSizeBytes)} MB; installing desktop packages`);

    const desktopStarted = Date.now();
    // Exactly the user-data's install line, so the rehearsal's run of it changes nothing.
    // nspawn (not chroot) mounts /proc, /sys and /dev for the maintainer scripts.
    const script = [
      'set -eu',
      'export DEBIAN_FRONTEND=noninteractive',
      'apt-get -q update',
      `apt-get install -y -q --no-install-recommends ${DESKTOP_PACKAGES.join(' ')}`,
      `apt-get install -y -q --no-install-recommends ${CLOUD_PACKAGES.join(' ')}`,
      `apt-get install -y -q --no-install-recommends ${ATTACK_PACKAGES.join(' ')}`,
      'systemctl enable systemd-networkd.service',
      'apt-get clean',
      // The rehearsal points apt at its own empty repository; stale lists only waste space.
      'rm -rf /var/lib/apt/lists/*',
    ].join('\n');
    await run('systemd-nspawn', ['-q', '--register=no', '--keep-unit', '-D', target, 'bash', '-c', script], {
      timeoutMs: left(),
    });
    for (const [file, text] of Object.entries(ROOTFS_FILES)) {
      await mkdir(join(target, dirname(file)), { recursive: true });
      await writeFile(join(target, file), text);
    }
    const desktopSeconds = secondsSince(desktopStarted);
    const sizeBytes = await sizeOf(target);

    const info: RootfsBuildInfo = {
      builtAt: new Date().toISOString(),
      mirror,
      suite: SUITE,
      basePackages: BASE_PACKAGES,
      desktopPackages: DESKTOP_PACKAGES,
      seconds: { debootstrap: debootstrapSeconds, desktop: desktopSeconds, total: secondsSince(started) },
      sizeBytes,
      baseSizeBytes,
    };
    await writeFile(join(tmp, 'build-info.json'), JSON.stringify(info, null, 2) + '\n');
    try {
      await rename(tmp, finalDir);
    } catch (err) {
      // Another process finished the same build first: use its copy, drop ours.
      if (!existsSync(join(finalDir, 'build-info.json'))) throw err;
    }
    log(`rootfs ready in ${info.seconds.total} s, ${mb(sizeBytes)} MB`);
    return rootfs;
  } finally {
    discard(); // Removes tmp if it was not renamed (a failed or lost build).
  }
}

/** The build record of a rootfs returned by ensureRootfs. */
export async function rootfsBuildInfo(rootfs: string): Promise<RootfsBuildInfo> {
  return JSON.parse(await readFile(join(rootfs, '..', 'build-info.json'), 'utf8')) as RootfsBuildInfo;
}

/** Package lists and recipe version decide the cache directory name. */
function cacheKey(): string {
  const recipe = JSON.stringify([RECIPE_VERSION, SUITE, BASE_PACKAGES, DESKTOP_PACKAGES, CLOUD_PACKAGES, ATTACK_PACKAGES, ROOTFS_FILES]);
  return createHash('sha256').update(recipe).digest('hex').slice(0, 10);
}

async function ensureHostTools(log: (m: string) => void): Promise<void> {
  const missing: string[] = [];
  if (!(await commandExists('debootstrap'))) missing.push('debootstrap');
  if (!(await commandExists('systemd-nspawn'))) missing.push('systemd-nspawn');
  if (!(await commandExists('ip'))) missing.push('ip');
  if (missing.length === 0) return;
  log(`installing host tools (missing: ${missing.join(', ')})`);
  const install = ['install', '-y', '-q', '-o', 'DPkg::Lock::Timeout=300', 'debootstrap', 'systemd-container', 'iproute2'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const first = await run('apt-get', install, { timeoutMs: 10 * 60_000, env, allowFailure: true });
  if (first.code !== 0) {
    // A fresh machine may have no package lists yet.
    await run('apt-get', ['-q', 'update'], { timeoutMs: 5 * 60_000, env });
    await run('apt-get', install, { timeoutMs: 10 * 60_000, env });
  }
}

/**
 * The host's Debian mirror (the machines here reach only that one), read from
 * deb822 `.sources` files or one-line `.list` entries; security and updates
 * archives are skipped because debootstrap needs the main archive.
 */
export function hostDebianMirror(): string {
  const files: string[] = [];
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      if (name.endsWith('.sources') || name.endsWith('.list')) files.push(join(dir, name));
    }
  }
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  const uris: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^URIs:\s*(.+)$/gim)) uris.push(...m[1].trim().split(/\s+/));
    for (const m of text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+/gm)) uris.push(m[1]);
  }
  const mirror = uris.find((u) => /\/debian\/?$/.test(u));
  return mirror?.replace(/\/$/, '') ?? 'http://deb.debian.org/debian';
}

/**
 * Removes `.building-<pid>-*` directories whose process is gone. An interrupted
 * debootstrap leaves /proc and /sys mounted inside its target: unmount them first,
 * and never let rm cross into another filesystem.
 */
function removeAbandonedBuilds(cacheDir: string, log: (m: string) => void): void {
  for (const name of readdirSync(cacheDir)) {
    const m = /^\.building-(\d+)-/.exec(name);
    if (!m) continue;
    if (Number(m[1]) !== process.pid && existsSync(`/proc/${m[1]}`)) continue; // Still building.
    log(`removing abandoned build ${name}`);
    killProcessesUsing(join(cacheDir, name));
    removeTree(join(cacheDir, name));
  }
}

/**
 * A SIGKILLed build leaves its detached debootstrap/dpkg behind (they die of SIGPIPE
 * only when they next write): kill whatever runs from, or is chrooted into, dir.
 */
function killProcessesUsing(dir: string): void {
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const root = readlinkSync(`/proc/${pid}/root`);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (root.startsWith(dir) || cmdline.includes(dir)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Gone, or a kernel thread.
    }
  }
}

async function sizeOf(dir: string): Promise<number> {
  const r = await run('du', ['-sb', '--one-file-system', dir], { timeoutMs: 120_000 });
  return Number(r.stdout.split('\t')[0]);
}

const mb = (bytes: number): number => Math.round(bytes / 1e6);

// Run directly: `tsx rootfs.ts [cacheDir]` builds (or finds) the rootfs and prints its record.
if (require.main === module) {
  const cacheDir = process.argv[2] ?? '/var/cache/lablink-rehearsal';
  const started = Date.now();
  ensureRootfs(cacheDir, { log: (m) => console.log(`[rootfs] ${m}`) })
    .then(async (rootfs) => {
      console.log(rootfs, `(${secondsSince(started)} s this call)`);
      console.log(JSON.stringify(await rootfsBuildInfo(rootfs), null, 2));
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
