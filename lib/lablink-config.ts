import { DEFAULT_INSTANCE_TYPE } from '../core/cost';
import { DEFAULT_IDLE_RELEASE } from '../core/idle-release';
import { DEFAULT_ADDRESS_LIMIT } from '../store/client-limits';
import { DEFAULT_LINE_POLICY } from '../store/waiting-line';
import { DEFAULT_HOLD_SECONDS } from '../contract/timeouts';
import { statSync } from 'node:fs';
import path from 'node:path';
import * as v from 'valibot';
import { checkAll } from '../core/validate';
import { MAX_DEPLOYED_HOLD_SECONDS } from './allocator-service';

/** Kept well within CloudFormation's limits by nested stacks of VMs (see lib/client-fleet.ts). */
export const MAX_VM_COUNT = 1000;

/** The deployment's settings, read once from CDK context (`cdk deploy -c key=value`) and validated. */
export interface LabLinkConfig {
  /** Client VMs to run. Changing it adds or removes VMs at the end; the others stay. @default 2 */
  readonly vmCount: number;
  /**
   * Warm pool: only this many free VMs run ahead of demand; the other free VMs are stopped
   * (after the deploy booted them once) and started again as participants take VMs. All VMs
   * run when unset.
   */
  readonly warmVms?: number;
  /** EC2 instance type of the client VMs. @default 't3.large' (use 'g4dn.xlarge' for a GPU) */
  readonly instanceType: string;
  /** USD per VM-hour for the after-workshop report's estimate; when unset, the code's dated on-demand table for instanceType. */
  readonly hourlyPrice?: number;
  /** A specific AMI for the client VMs; when unset, `amiSsmParameter` picks one. */
  readonly amiId?: string;
  /** Public SSM parameter naming the AMI. @default Ubuntu 24.04 LTS amd64 */
  readonly amiSsmParameter: string;
  /** Root volume of each VM, in GiB. @default 40 */
  readonly volumeGb: number;
  /** Aurora Serverless v2 capacity range, in ACUs. @default 0.5 and 4 */
  readonly dbMinCapacity: number;
  readonly dbMaxCapacity: number;
  /** How long the allocator holds a VM's poll before answering "nothing yet". @default 40 */
  readonly holdSeconds: number;
  /** Allocator tasks on Fargate; more than one share the database's notifications. @default 1 */
  readonly allocatorTasks: number;
  /** VMs are named `<prefix>-1 … <prefix>-n`; participants see these names in CRD. @default 'lablink-vm' */
  readonly vmNamePrefix: string;
  /** Steady requests per second API Gateway lets through to the form API. @default max(50, vmCount): see `apiThrottle` */
  readonly apiRateLimit?: number;
  /**
   * Also accept LabLink-compatible clients that present a shared fleet token (kept in Secrets
   * Manager). Off by default: a token any VM holds lets root on one VM poll as another. @default false
   */
  readonly allowFleetToken: boolean;
  /** When set, participants must enter this code on the form, so strangers who find the URL cannot take VMs. */
  readonly accessCode?: string;
  /** New VMs one client address may take per window (a room behind one NAT shares an address). @default 90 */
  readonly vmsPerAddress: number;
  /** That window, in minutes. @default 10 */
  readonly vmsPerAddressMinutes: number;
  /** A VM whose setup failed and got no new command is released after this many minutes; 0: never. @default 10 */
  readonly releaseFailedAfterMinutes: number;
  /** A ready VM the in-use probe never saw connected is released after this many minutes; 0: never. @default 20 */
  readonly releaseUnconnectedAfterMinutes: number;
  /** The first in line, asked for a fresh CRD command, has this many minutes to paste it before the next is served. @default 5 */
  readonly lineTurnMinutes: number;
  /**
   * When set (ISO time, UTC), the VMs and the allocator are stopped at that time. A past time
   * is refused by the stack for deploys only (see LabLinkStack), so `cdk destroy` with the
   * workshop's flags still works after the workshop.
   */
  readonly expiresAt?: string;
  /** When set, alarms are sent to this address (it must confirm the subscription). */
  readonly alarmEmail?: string;
  /**
   * The workshop's own software on every VM, set up before the VM joins the pool:
   * `setupScript` (a local shell script, shipped as an S3 asset, run as root once on first boot,
   * tried up to three times), `setupCheck` (a command that must then succeed as the desktop user),
   * `repository` (+ `repositoryRef`) cloned into the desktop user's home, `containerImage` pulled
   * with Podman and started from a desktop launcher.
   */
  readonly setupScript?: string;
  readonly setupCheck?: string;
  readonly repository?: string;
  readonly repositoryRef?: string;
  readonly containerImage?: string;
}

/** Bigger scripts belong in the repository or an image; this keeps a VM's download quick. */
export const MAX_SETUP_SCRIPT_BYTES = 1024 * 1024;

export const UBUNTU_24_04_AMI_PARAMETER = '/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id';

/** Canonical's parameters for Ubuntu 22.04 name it by version or by codename. */
const UBUNTU_22_04_PARAMETER = /\/(22\.04|jammy)\//;

type ContextReader = (key: string) => unknown;

/** A refusal names the key, what it allows, and the value exactly as given (before any conversion). */
const refused = (key: string, allowed: string) => (issue: v.BaseIssue<unknown>) =>
  `${key} must be ${allowed} (got ${JSON.stringify(issue.input)}).`;

/** cdk.json gives numbers, `-c key=value` gives strings: both count; anything else becomes NaN and is refused. */
const asNumber = (raw: unknown) => (typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN);

function numberKey(key: string, min: number, max: number, whole = true) {
  const allowed = v.pipe(
    v.number(),
    v.finite(),
    v.minValue(min),
    v.maxValue(max),
    v.check((value) => !whole || Number.isInteger(value)),
  );
  // Checked before the conversion, so the refusal quotes the value as given.
  return v.pipe(
    v.unknown(),
    v.check((raw) => v.is(allowed, asNumber(raw)), refused(key, `a ${whole ? 'whole number' : 'number'} from ${min} to ${max}`)),
    v.transform(asNumber),
  );
}

const flagKey = (key: string) =>
  v.pipe(
    v.union([v.boolean(), v.picklist(['true', 'false'])], refused(key, 'true or false')),
    v.transform((raw) => raw === true || raw === 'true'),
  );

const textKey = (key: string, pattern: RegExp, allowed: string) =>
  v.pipe(v.string(refused(key, allowed)), v.regex(pattern, refused(key, allowed)));

const isSmallFile = (file: string, maxBytes: number) => {
  const stat = statSync(path.resolve(file), { throwIfNoEntry: false });
  return stat !== undefined && stat.isFile() && stat.size <= maxBytes;
};

/** A local file, given relative to the working directory; the stack gets its absolute path. */
function fileKey(key: string, maxBytes: number) {
  const message = refused(key, `a readable file of at most ${maxBytes / 1024} KB, such as ./setup.sh`);
  return v.pipe(
    v.string(message),
    v.check((file) => isSmallFile(file, maxBytes), message),
    v.transform((file) => path.resolve(file)),
  );
}

const CONTEXT_KEYS = v.object({
  vmCount: v.optional(numberKey('vmCount', 0, MAX_VM_COUNT), 2),
  warmVms: v.optional(numberKey('warmVms', 0, MAX_VM_COUNT)),
  instanceType: v.optional(
    textKey('instanceType', /^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'an EC2 instance type such as t3.large or g4dn.xlarge'),
    DEFAULT_INSTANCE_TYPE,
  ),
  hourlyPrice: v.optional(numberKey('hourlyPrice', 0, 1000, false)),
  amiId: v.optional(textKey('amiId', /^ami-[0-9a-f]{8,17}$/, 'an AMI id such as ami-0123456789abcdef0')),
  amiSsmParameter: v.optional(
    v.pipe(
      textKey('amiSsmParameter', /^\/[\w./-]+$/, 'an SSM parameter path starting with /'),
      // Its curl (7.81) signs S3 requests without x-amz-content-sha256: S3 refuses every VM's agent download.
      v.check(
        (parameter) => !UBUNTU_22_04_PARAMETER.test(parameter),
        (issue) =>
          `amiSsmParameter must not name Ubuntu 22.04, whose curl 7.81 cannot sign the VMs' S3 downloads; use Ubuntu 24.04 (got ${JSON.stringify(issue.input)}).`,
      ),
    ),
    UBUNTU_24_04_AMI_PARAMETER,
  ),
  volumeGb: v.optional(numberKey('volumeGb', 8, 2000), 40),
  dbMinCapacity: v.optional(numberKey('dbMinCapacity', 0, 256, false), 0.5),
  dbMaxCapacity: v.optional(numberKey('dbMaxCapacity', 1, 256, false), 4),
  holdSeconds: v.optional(numberKey('holdSeconds', 5, MAX_DEPLOYED_HOLD_SECONDS), DEFAULT_HOLD_SECONDS),
  allocatorTasks: v.optional(numberKey('allocatorTasks', 1, 10), 1),
  vmNamePrefix: v.optional(
    textKey(
      'vmNamePrefix',
      /^[a-z][a-z0-9-]{0,40}$/,
      'lower-case letters, digits and dashes, starting with a letter, at most 41 characters',
    ),
    'lablink-vm',
  ),
  apiRateLimit: v.optional(numberKey('apiRateLimit', 1, 10000)),
  allowFleetToken: v.optional(flagKey('allowFleetToken'), false),
  vmsPerAddress: v.optional(numberKey('vmsPerAddress', 1, 100_000), DEFAULT_ADDRESS_LIMIT.vms),
  vmsPerAddressMinutes: v.optional(numberKey('vmsPerAddressMinutes', 1, 1440), DEFAULT_ADDRESS_LIMIT.windowSeconds / 60),
  releaseFailedAfterMinutes: v.optional(numberKey('releaseFailedAfterMinutes', 0, 1440), DEFAULT_IDLE_RELEASE.failedAfterSeconds! / 60),
  releaseUnconnectedAfterMinutes: v.optional(
    numberKey('releaseUnconnectedAfterMinutes', 0, 1440),
    DEFAULT_IDLE_RELEASE.unconnectedAfterSeconds! / 60,
  ),
  lineTurnMinutes: v.optional(numberKey('lineTurnMinutes', 1, 60), DEFAULT_LINE_POLICY.turnSeconds / 60),
  accessCode: v.optional(textKey('accessCode', /^[\x21-\x7e]{4,64}$/, '4 to 64 printable characters without spaces')),
  expiresAt: v.optional(textKey('expiresAt', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?Z$/, 'a UTC time such as 2026-12-01T18:00Z')),
  alarmEmail: v.optional(textKey('alarmEmail', /^[^\s@]+@[^\s@]+\.[^\s@]+$/, 'an email address')),
  setupScript: v.optional(fileKey('setupScript', MAX_SETUP_SCRIPT_BYTES)),
  setupCheck: v.optional(
    textKey('setupCheck', /^[^\n\r\0]{1,1000}$/, 'one line of at most 1000 characters, such as \'python -c "import sleap"\''),
  ),
  // No user:password@ in an https URL: the plan, the clone's .git/config and the log would show it to participants.
  repository: v.optional(
    textKey(
      'repository',
      /^(https:\/\/[\w.-]+(:\d+)?\/|ssh:\/\/|git@)[\w.@:/~+-]*?\/?[\w.-]+?(\.git)?\/?$/,
      'a public git URL without credentials, such as https://github.com/owner/tutorial.git',
    ),
  ),
  repositoryRef: v.optional(textKey('repositoryRef', /^\w[\w./-]{0,199}$/, 'a branch, tag or commit such as main or v1.2')),
  containerImage: v.optional(
    textKey('containerImage', /^[a-z0-9][\w./:@-]{0,254}$/, 'an image reference such as docker.io/library/python:3.12'),
  ),
});

/**
 * Rules between keys come after the keys' own refusals. Each is checked when the keys it compares
 * are valid (partialCheck), even if other keys are not; its issue is filed under a key (forward),
 * since a path-less issue would make valibot skip the rules after it.
 */
const CONTEXT = v.pipe(
  CONTEXT_KEYS,
  v.forward(
    v.partialCheck(
      [['warmVms'], ['vmCount']],
      (config) => config.warmVms === undefined || config.warmVms <= config.vmCount,
      (issue) => `warmVms must not be larger than vmCount (${issue.input.vmCount}).`,
    ),
    ['warmVms'],
  ),
  v.forward(
    v.partialCheck(
      [['repositoryRef'], ['repository']],
      (config) => !config.repositoryRef || Boolean(config.repository),
      'repositoryRef needs repository.',
    ),
    ['repositoryRef'],
  ),
  v.forward(
    v.partialCheck(
      [['dbMinCapacity'], ['dbMaxCapacity']],
      (config) => config.dbMinCapacity <= config.dbMaxCapacity,
      'dbMinCapacity must not be larger than dbMaxCapacity.',
    ),
    ['dbMinCapacity'],
  ),
  v.forward(
    v.partialCheck(
      [['dbMinCapacity'], ['dbMaxCapacity']],
      (config) => config.dbMinCapacity % 0.5 === 0 && config.dbMaxCapacity % 0.5 === 0,
      'dbMinCapacity and dbMaxCapacity must be multiples of 0.5.',
    ),
    ['dbMaxCapacity'],
  ),
);

/** Reads and validates every context key; one error lists every bad key with what it allows. */
export function readConfig(read: ContextReader): LabLinkConfig {
  // An empty value (`-c key=`) leaves the key at its default, like an unset one.
  const context = Object.fromEntries(Object.keys(CONTEXT_KEYS.entries).map((key) => [key, read(key) === '' ? undefined : read(key)]));
  const checked = checkAll(CONTEXT, context);
  if (!checked.ok) throw new Error(`Invalid LabLink context (set with cdk deploy -c key=value):\n  - ${checked.messages.join('\n  - ')}`);
  return checked.value;
}
