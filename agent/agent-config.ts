import os from 'node:os';
import { SetupPlan, readSetupPlan } from '../contract/setup-plan';
import { HOSTNAME_PATTERN } from '../contract/wire';
import { START_HOST_PATH } from '../core/crd-command';
import { crdConfigDir } from './crd-host';
import { AccountResetConfig, ResetConfig, ResetTimeouts } from './desktop-reset';
import { DEFAULT_IMDS_URL } from './instance-identity';
import { SYSTEM_ACCOUNT_FILES } from './reset/accounts';

/** `token`: the fleet's shared bearer token (local mode, LabLink-compatible); `ec2`: the signed instance identity. */
/** How the agent tells that a participant is connected: a process that runs then, or CRD's journal lines. */
export type InUseProbe = { kind: 'process'; name: string } | { kind: 'crd-journal'; journalctl: string };

export type AgentIdentityMode = 'token' | 'ec2';

export interface AgentConfig {
  allocatorUrl: string;
  identity: AgentIdentityMode;
  /** Required in token mode. */
  fleetToken?: string;
  imdsUrl: string;
  vmName: string;
  startHostPath: string;
  /** Where the agent remembers which assignment it already configured. */
  stateDir: string;
  /**
   * When set, start-host runs as this desktop user through `runuser` (start-host refuses
   * root) while the agent itself runs as root, so the participant, who works as that
   * user, cannot read the agent's secrets.
   */
  desktopUser?: string;
  /** Where start-host keeps the host registration; derived from the desktop user unless set. */
  crdConfigDir: string;
  health: HealthSchedule;
  /** The boot script's log, shipped to the allocator and followed; unset: none. */
  bootLog?: string;
  /** How to wipe the desktop between participants; unset (no desktop user, no home given): a reset fails, saying so. */
  reset?: ResetConfig;
  /** The workshop's setup (LABLINK_SETUP names its JSON file), run before the first poll; unset: none. */
  setup?: SetupPlan;
  /** Wait before the setup script's second try, doubled before each further one. */
  setupRetrySeconds: number;
}

function seconds(env: NodeJS.ProcessEnv, name: string, fallback: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+(\.\d+)?$/.test(raw) || Number(raw) < 0.1 || Number(raw) > 86_400) {
    problems.push(`${name} must be a number of seconds from 0.1 to 86400.`);
    return fallback;
  }
  return Number(raw);
}

/** A command as argv: split at spaces, never run by a shell. */
function command(env: NodeJS.ProcessEnv, name: string, fallback: string[] | undefined, problems: string[]): string[] {
  const raw = env[name]?.trim();
  if (!raw) {
    if (!fallback) problems.push(`${name} must be set when LABLINK_DESKTOP_HOME is set without LABLINK_DESKTOP_USER.`);
    return fallback ?? [];
  }
  const argv = raw.split(/\s+/);
  if (!argv[0].startsWith('/') && !/^[a-z][a-z0-9_.-]*$/.test(argv[0]))
    problems.push(`${name} must start with a program name or an absolute path.`);
  return argv;
}

/** Where a VM's account reset looks and what it runs: the real system (tests build their own). */
export const SYSTEM_ACCOUNT_RESET: Omit<AccountResetConfig, 'kind' | 'stopCrd' | 'skelDir' | 'tempDirs' | 'timeouts'> = {
  numbering: { uidBase: 700_000_000, subordinateBase: 800_000_000 },
  files: SYSTEM_ACCOUNT_FILES,
  tools: {
    systemctl: ['systemctl'],
    loginctl: ['loginctl'],
    umount: ['umount'],
    ipcrm: ['ipcrm'],
    find: ['find'],
    rm: ['rm'],
    useradd: ['useradd'],
    userdel: ['userdel'],
    usermod: ['usermod'],
    groupadd: ['groupadd'],
    groupdel: ['groupdel'],
  },
  procDir: '/proc',
  mountInfo: '/proc/self/mountinfo',
  sysvipcDir: '/proc/sysvipc',
  lingerDir: '/var/lib/systemd/linger',
  runtimeDirs: '/run/user',
  // The root file system and the usual separate mounts a user can write to.
  sweepRoots: ['/', '/home', '/tmp', '/var/tmp', '/dev/shm', '/run', '/run/lock', '/dev/mqueue', '/var/crash'],
};

export const DEFAULT_RESET_TIMEOUTS: ResetTimeouts = { commandMs: 60_000, endProcessesMs: 20_000, sweepMs: 120_000 };

/**
 * The reset. With a desktop user (a VM, the agent as root): a fresh account per participant,
 * the old one ended and swept (see agent/desktop-reset.ts), CRD stopped with
 * `systemctl stop chrome-remote-desktop@<user>` unless LABLINK_RESET_STOP_CRD says otherwise.
 * Without one, only an explicit LABLINK_DESKTOP_HOME with its commands (local mode's
 * stand-ins) makes resets possible, so no agent ever deletes its own user's home by default.
 */
function readResetConfig(env: NodeJS.ProcessEnv, problems: string[]): ResetConfig | undefined {
  const user = env.LABLINK_DESKTOP_USER || undefined;
  const home = env.LABLINK_DESKTOP_HOME || undefined;
  if (!user && !home) return undefined;
  const skelDir = env.LABLINK_SKEL_DIR || '/etc/skel';
  if (!skelDir.startsWith('/')) problems.push('LABLINK_SKEL_DIR must be an absolute path.');
  const tempDirs = env.LABLINK_RESET_TEMP_DIRS
    ? env.LABLINK_RESET_TEMP_DIRS.split(':').filter(Boolean)
    : user
      ? ['/tmp', '/var/tmp', '/dev/shm']
      : [];
  if (tempDirs.some((dir) => !dir.startsWith('/'))) problems.push('LABLINK_RESET_TEMP_DIRS must be absolute paths separated by colons.');
  const common = { skelDir, tempDirs, timeouts: DEFAULT_RESET_TIMEOUTS };
  if (user) {
    if (home !== undefined) problems.push('LABLINK_DESKTOP_HOME is for local mode only: a desktop user’s home comes from /etc/passwd.');
    return {
      kind: 'account',
      ...common,
      ...SYSTEM_ACCOUNT_RESET,
      stopCrd: command(env, 'LABLINK_RESET_STOP_CRD', ['systemctl', 'stop', `chrome-remote-desktop@${user}`], problems),
    };
  }
  if (!home?.startsWith('/')) problems.push('LABLINK_DESKTOP_HOME must be an absolute path.');
  return {
    kind: 'home',
    ...common,
    home: home ?? '',
    stopCrd: command(env, 'LABLINK_RESET_STOP_CRD', undefined, problems),
    endSession: command(env, 'LABLINK_RESET_END_SESSION', undefined, problems),
  };
}

/** LABLINK_IN_USE_PROBE=crd-journal (the deployed VMs) or LABLINK_IN_USE_PROCESS=<name>; neither: not reported. */
function readInUseProbe(env: NodeJS.ProcessEnv, problems: string[]): InUseProbe | undefined {
  const probe = env.LABLINK_IN_USE_PROBE || undefined;
  const name = env.LABLINK_IN_USE_PROCESS || undefined;
  if (probe !== undefined && probe !== 'crd-journal') problems.push('LABLINK_IN_USE_PROBE must be "crd-journal" when set.');
  if (probe !== undefined && name !== undefined) problems.push('Set LABLINK_IN_USE_PROBE or LABLINK_IN_USE_PROCESS, not both.');
  if (probe === 'crd-journal') return { kind: 'crd-journal', journalctl: env.LABLINK_JOURNALCTL || 'journalctl' };
  return name === undefined ? undefined : { kind: 'process', name };
}

/** Reads the agent's environment once; a missing or bad value stops the agent with a clear message. */
export function readAgentConfig(env: NodeJS.ProcessEnv): AgentConfig {
  const problems: string[] = [];
  const allocatorUrl = env.LABLINK_ALLOCATOR_URL ?? '';
  if (!/^https?:\/\/[^/]+/.test(allocatorUrl)) problems.push('LABLINK_ALLOCATOR_URL must be an http(s) URL of the allocator.');
  const identity = (env.LABLINK_IDENTITY || 'token') as AgentIdentityMode;
  if (identity !== 'token' && identity !== 'ec2') problems.push('LABLINK_IDENTITY must be "token" or "ec2".');
  const fleetToken = env.LABLINK_FLEET_TOKEN || undefined;
  if (identity === 'token' && (fleetToken ?? '').length < 16) problems.push('LABLINK_FLEET_TOKEN must be set (at least 16 characters).');
  const vmName = env.LABLINK_VM_NAME || os.hostname();
  if (!HOSTNAME_PATTERN.test(vmName)) problems.push('LABLINK_VM_NAME must be letters, digits, dots and dashes.');
  if (env.LABLINK_DESKTOP_USER && !/^[a-z_][a-z0-9_-]{0,31}$/.test(env.LABLINK_DESKTOP_USER)) {
    problems.push('LABLINK_DESKTOP_USER must be a Linux user name.');
  }
  const bootLog = env.LABLINK_BOOT_LOG || undefined;
  if (bootLog !== undefined && !bootLog.startsWith('/')) problems.push('LABLINK_BOOT_LOG must be an absolute path.');
  let setup: SetupPlan | undefined;
  if (env.LABLINK_SETUP) {
    try {
      setup = readSetupPlan(env.LABLINK_SETUP);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  const setupRetrySeconds = seconds(env, 'LABLINK_SETUP_RETRY_SECONDS', 30, problems);
  const health: HealthSchedule = {
    heartbeatSeconds: seconds(env, 'LABLINK_HEARTBEAT_SECONDS', 30, problems),
    gpuCheckSeconds: seconds(env, 'LABLINK_GPU_CHECK_SECONDS', 60, problems),
    inUseCheckSeconds: seconds(env, 'LABLINK_IN_USE_CHECK_SECONDS', 15, problems),
    inUseProbe: readInUseProbe(env, problems),
    crdProcess: env.LABLINK_CRD_PROCESS || 'chrome-remote-desktop-host',
    nvidiaSmi: env.LABLINK_NVIDIA_SMI || 'nvidia-smi',
  };
  const reset = readResetConfig(env, problems);
  if (problems.length > 0) throw new Error(`Agent configuration: ${problems.join(' ')}`);
  return {
    allocatorUrl: allocatorUrl.replace(/\/+$/, ''),
    identity,
    fleetToken,
    imdsUrl: (env.LABLINK_IMDS_URL || DEFAULT_IMDS_URL).replace(/\/+$/, ''),
    vmName,
    startHostPath: env.LABLINK_START_HOST || START_HOST_PATH,
    stateDir: env.LABLINK_STATE_DIR || '/var/lib/lablink-agent',
    desktopUser: env.LABLINK_DESKTOP_USER || undefined,
    crdConfigDir: crdConfigDir({
      desktopUser: env.LABLINK_DESKTOP_USER || undefined,
      override: env.LABLINK_CRD_CONFIG_DIR,
      home: env.HOME,
    }),
    health,
    bootLog,
    reset,
    setup,
    setupRetrySeconds,
  };
}

export interface HealthSchedule {
  heartbeatSeconds: number;
  gpuCheckSeconds: number;
  inUseCheckSeconds: number;
  /** How the agent tells a participant is on the VM; unset: "in use" is not reported. */
  inUseProbe?: InUseProbe;
  crdProcess: string;
  nvidiaSmi: string;
}
