import { DEFAULT_HOLD_SECONDS } from '../allocator/timeouts';
import { statSync } from 'node:fs';
import path from 'node:path';
import { MAX_DEPLOYED_HOLD_SECONDS } from './allocator-service';

/** Kept well within CloudFormation's limits by nested stacks of VMs (see lib/client-fleet.ts). */
export const MAX_VM_COUNT = 1000;

/** The deployment's settings, read once from CDK context (`cdk deploy -c key=value`) and validated. */
export interface LabLinkConfig {
  /** Client VMs to run. Changing it adds or removes VMs at the end; the others stay. @default 2 */
  vmCount: number;
  /**
   * Warm pool: only this many free VMs run ahead of demand; the other free VMs are stopped
   * (after the deploy booted them once) and started again as participants take VMs. All VMs
   * run when unset.
   */
  warmVms?: number;
  /** EC2 instance type of the client VMs. @default 't3.large' (use 'g4dn.xlarge' for a GPU) */
  instanceType: string;
  /** A specific AMI for the client VMs; when unset, `amiSsmParameter` picks one. */
  amiId?: string;
  /** Public SSM parameter naming the AMI. @default Ubuntu 24.04 LTS amd64 */
  amiSsmParameter: string;
  /** Root volume of each VM, in GiB. @default 40 */
  volumeGb: number;
  /** Aurora Serverless v2 capacity range, in ACUs. @default 0.5 and 4 */
  dbMinCapacity: number;
  dbMaxCapacity: number;
  /** How long the allocator holds a VM's poll before answering "nothing yet". @default 40 */
  holdSeconds: number;
  /** Allocator tasks on Fargate; more than one share the database's notifications. @default 1 */
  allocatorTasks: number;
  /** VMs are named `<prefix>-1 … <prefix>-n`; participants see these names in CRD. @default 'lablink-vm' */
  vmNamePrefix: string;
  /** Steady requests per second API Gateway lets through to the form API. @default 50 */
  apiRateLimit: number;
  /**
   * Also accept LabLink-compatible clients that present a shared fleet token (kept in Secrets
   * Manager). Off by default: a token any VM holds lets root on one VM poll as another. @default false
   */
  allowFleetToken: boolean;
  /** When set, participants must enter this code on the form, so strangers who find the URL cannot take VMs. */
  accessCode?: string;
  /**
   * When set (ISO time, UTC), the VMs and the allocator are stopped at that time. A past time
   * is refused by the stack for deploys only (see LabLinkStack), so `cdk destroy` with the
   * workshop's flags still works after the workshop.
   */
  expiresAt?: string;
  /** When set, alarms are sent to this address (it must confirm the subscription). */
  alarmEmail?: string;
  /**
   * The workshop's own software on every VM, set up before the VM joins the pool:
   * `setupScript` (a local shell script, shipped as an S3 asset, run as root once on first boot,
   * tried up to three times), `setupCheck` (a command that must then succeed as the desktop user),
   * `repository` (+ `repositoryRef`) cloned into the desktop user's home, `containerImage` pulled
   * with Podman and started from a desktop launcher.
   */
  setupScript?: string;
  setupCheck?: string;
  repository?: string;
  repositoryRef?: string;
  containerImage?: string;
}

/** Bigger scripts belong in the repository or an image; this keeps a VM's download quick. */
export const MAX_SETUP_SCRIPT_BYTES = 1024 * 1024;

export const UBUNTU_24_04_AMI_PARAMETER = '/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id';

type ContextReader = (key: string) => unknown;

class ConfigErrors {
  readonly messages: string[] = [];

  number(read: ContextReader, key: string, fallback: number, min: number, max: number, whole = true): number {
    const raw = read(key);
    if (raw === undefined || raw === '') return fallback;
    const value = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
    if (!Number.isFinite(value) || (whole && !Number.isInteger(value)) || value < min || value > max) {
      this.messages.push(`${key} must be a ${whole ? 'whole number' : 'number'} from ${min} to ${max} (got ${JSON.stringify(raw)}).`);
      return fallback;
    }
    return value;
  }

  flag(read: ContextReader, key: string, fallback: boolean): boolean {
    const raw = read(key);
    if (raw === undefined || raw === '') return fallback;
    if (raw === true || raw === 'true') return true;
    if (raw === false || raw === 'false') return false;
    this.messages.push(`${key} must be true or false (got ${JSON.stringify(raw)}).`);
    return fallback;
  }

  text(read: ContextReader, key: string, fallback: string | undefined, pattern: RegExp, allowed: string): string | undefined {
    const raw = read(key);
    if (raw === undefined || raw === '') return fallback;
    if (typeof raw !== 'string' || !pattern.test(raw)) {
      this.messages.push(`${key} must be ${allowed} (got ${JSON.stringify(raw)}).`);
      return fallback;
    }
    return raw;
  }

  /** A local file's absolute path: it must exist and be at most `maxBytes`. */
  file(read: ContextReader, key: string, maxBytes: number): string | undefined {
    const raw = read(key);
    if (raw === undefined || raw === '') return undefined;
    const file = typeof raw === 'string' ? path.resolve(raw) : '';
    const size = file ? statSync(file, { throwIfNoEntry: false }) : undefined;
    if (!size?.isFile() || size.size > maxBytes) {
      this.messages.push(`${key} must be a readable file of at most ${maxBytes / 1024} KB, such as ./setup.sh (got ${JSON.stringify(raw)}).`);
      return undefined;
    }
    return file;
  }
}

/** Reads and validates every context key; one error lists every bad key with what it allows. */
export function readConfig(read: ContextReader): LabLinkConfig {
  const errors = new ConfigErrors();
  const config: LabLinkConfig = {
    vmCount: errors.number(read, 'vmCount', 2, 0, MAX_VM_COUNT),
    warmVms: read('warmVms') === undefined || read('warmVms') === '' ? undefined : errors.number(read, 'warmVms', 0, 0, MAX_VM_COUNT),
    instanceType: errors.text(read, 'instanceType', 't3.large', /^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'an EC2 instance type such as t3.large or g4dn.xlarge')!,
    amiId: errors.text(read, 'amiId', undefined, /^ami-[0-9a-f]{8,17}$/, 'an AMI id such as ami-0123456789abcdef0'),
    amiSsmParameter: errors.text(read, 'amiSsmParameter', UBUNTU_24_04_AMI_PARAMETER, /^\/[\w./-]+$/, 'an SSM parameter path starting with /')!,
    volumeGb: errors.number(read, 'volumeGb', 40, 8, 2000),
    dbMinCapacity: errors.number(read, 'dbMinCapacity', 0.5, 0, 256, false),
    dbMaxCapacity: errors.number(read, 'dbMaxCapacity', 4, 1, 256, false),
    holdSeconds: errors.number(read, 'holdSeconds', DEFAULT_HOLD_SECONDS, 5, MAX_DEPLOYED_HOLD_SECONDS),
    allocatorTasks: errors.number(read, 'allocatorTasks', 1, 1, 10),
    vmNamePrefix: errors.text(read, 'vmNamePrefix', 'lablink-vm', /^[a-z][a-z0-9-]{0,40}$/, 'lower-case letters, digits and dashes, starting with a letter, at most 41 characters')!,
    apiRateLimit: errors.number(read, 'apiRateLimit', 50, 1, 10000),
    allowFleetToken: errors.flag(read, 'allowFleetToken', false),
    accessCode: errors.text(read, 'accessCode', undefined, /^[\x21-\x7e]{4,64}$/, '4 to 64 printable characters without spaces'),
    expiresAt: errors.text(read, 'expiresAt', undefined, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?Z$/, 'a UTC time such as 2026-12-01T18:00Z'),
    alarmEmail: errors.text(read, 'alarmEmail', undefined, /^[^\s@]+@[^\s@]+\.[^\s@]+$/, 'an email address'),
    setupScript: errors.file(read, 'setupScript', MAX_SETUP_SCRIPT_BYTES),
    setupCheck: errors.text(read, 'setupCheck', undefined, /^[^\n\r\0]{1,1000}$/, 'one line of at most 1000 characters, such as \'python -c "import sleap"\''),
    // No user:password@ in an https URL: the plan, the clone's .git/config and the log would show it to participants.
    repository: errors.text(read, 'repository', undefined, /^(https:\/\/[\w.-]+(:\d+)?\/|ssh:\/\/|git@)[\w.@:/~+-]*?\/?[\w.-]+?(\.git)?\/?$/, 'a public git URL without credentials, such as https://github.com/owner/tutorial.git'),
    repositoryRef: errors.text(read, 'repositoryRef', undefined, /^\w[\w./-]{0,199}$/, 'a branch, tag or commit such as main or v1.2'),
    containerImage: errors.text(read, 'containerImage', undefined, /^[a-z0-9][\w.\/:@-]{0,254}$/, 'an image reference such as docker.io/library/python:3.12'),
  };
  if (config.warmVms !== undefined && config.warmVms > config.vmCount) errors.messages.push(`warmVms must not be larger than vmCount (${config.vmCount}).`);
  if (config.repositoryRef && !config.repository) errors.messages.push('repositoryRef needs repository.');
  if (config.dbMinCapacity > config.dbMaxCapacity) errors.messages.push('dbMinCapacity must not be larger than dbMaxCapacity.');
  if (config.dbMinCapacity % 0.5 !== 0 || config.dbMaxCapacity % 0.5 !== 0) errors.messages.push('dbMinCapacity and dbMaxCapacity must be multiples of 0.5.');
  if (errors.messages.length > 0) {
    throw new Error(`Invalid LabLink context (set with cdk deploy -c key=value):\n  - ${errors.messages.join('\n  - ')}`);
  }
  return config;
}
