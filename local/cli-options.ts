import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_HOLD_SECONDS, MAX_HOLD_SECONDS } from '../contract/timeouts';
import { AddressLimit, DEFAULT_ADDRESS_LIMIT } from '../store/client-limits';
import { DEFAULT_IDLE_RELEASE, IdleReleasePolicy } from '../core/idle-release';
import { DEFAULT_INSTANCE_TYPE, PRICES_AS_OF, Pricing } from '../core/cost';
import { DEFAULT_LINE_POLICY, LinePolicy } from '../store/waiting-line';

export interface LocalOptions {
  port: number;
  vms: number;
  holdSeconds: number;
  accessCode?: string;
  /** New VMs one client address may take per window. */
  addressLimit: AddressLimit;
  /** When VMs held by nobody go back to the pool. */
  idleRelease: IdleReleasePolicy;
  /** How the after-workshop report prices VM-hours. */
  pricing: Pricing;
  /** The waiting line: how long the first in line has to paste a fresh command. */
  line: LinePolicy;
  /** The workshop's setup script (absolute) and check, tried on every simulated VM. */
  setupScript?: string;
  setupCheck?: string;
  help: boolean;
}

export const LOCAL_USAGE = `Usage: npm start -- [--port <p>] [--vms <n>] [--hold-seconds <s>] [--access-code <code>]
                    [--vms-per-address <n>] [--vms-per-address-minutes <m>]
                    [--release-failed-after <m>] [--release-unconnected-after <m>] [--line-turn-minutes <m>]
                    [--setup-script <file>] [--setup-check <command>]
                    [--instance-type <type>] [--hourly-price <usd>]

Runs LabLink on this machine: a real PostgreSQL, the allocator and the form on
http://127.0.0.1:<p>/, and <n> simulated VMs running the real agent with a stand-in
for Chrome Remote Desktop's start-host.

  --port <p>          port of the form and the allocator (default 8080)
  --vms <n>           simulated VMs to start, 0 or more (default 3)
  --hold-seconds <s>  how long a VM's poll is held before "nothing yet" (default ${DEFAULT_HOLD_SECONDS})
  --access-code <c>   participants must enter this code to get a VM (default: none)
  --vms-per-address <n>          new VMs one client address may take per window
                                 (default ${DEFAULT_ADDRESS_LIMIT.vms}: a room behind one NAT shares an address)
  --vms-per-address-minutes <m>  that window in minutes (default ${DEFAULT_ADDRESS_LIMIT.windowSeconds / 60})
  --release-failed-after <m>      a VM whose setup failed and got no new command goes
                                  back to the pool after m minutes (default ${DEFAULT_IDLE_RELEASE.failedAfterSeconds! / 60}; 0: never)
  --release-unconnected-after <m> a ready VM nobody connected to (by the agent's in-use
                                  probe) goes back after m minutes (default ${DEFAULT_IDLE_RELEASE.unconnectedAfterSeconds! / 60}; 0: never)
  --line-turn-minutes <m>         the first in line, asked for a fresh command, has m minutes
                                  to paste it before the next is served (default ${DEFAULT_LINE_POLICY.turnSeconds / 60})
  --setup-script <f>  run this shell script on each simulated VM before it joins the
                      pool (in the VM's own temporary folder, as you), to try a
                      workshop's setupScript before deploying
  --setup-check <cmd> a command that must succeed after the script (setupCheck)
  --instance-type <t> price the after-workshop report as this EC2 type (default ${DEFAULT_INSTANCE_TYPE})
  --hourly-price <usd> price it at this many dollars per VM-hour instead of the code's
                      on-demand table (dated ${PRICES_AS_OF})

Environment: LABLINK_FLEET_TOKEN and LABLINK_ADMIN_SECRET (at least 16 characters each;
generated and printed when unset).`;

function integer(name: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new Error(`--${name} must be a whole number from ${min} to ${max}, not "${value}".`);
  }
  return Number(value);
}

/** Minutes as seconds; 0 turns the rule off. */
function minutesOrOff(name: string, value: string): number | null {
  const minutes = integer(name, value, 0, 1440);
  return minutes === 0 ? null : minutes * 60;
}

function accessCode(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[\x21-\x7e]{4,64}$/.test(value)) throw new Error('--access-code must be 4 to 64 printable characters without spaces.');
  return value;
}

function instanceType(value: string): string {
  if (!/^[a-z][a-z0-9-]*\.[a-z0-9]+$/.test(value))
    throw new Error(`--instance-type must be an EC2 instance type such as t3.large, not "${value}".`);
  return value;
}

function hourlyPrice(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,4}(\.\d{1,6})?$/.test(value)) throw new Error(`--hourly-price must be dollars per hour such as 0.0832, not "${value}".`);
  return Number(value);
}

function setupScript(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const file = path.resolve(value);
  if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`--setup-script: there is no file ${file}.`);
  return file;
}

function setupCheck(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '' || value.length > 1000 || /[\n\r\0]/.test(value))
    throw new Error('--setup-check must be one line of at most 1000 characters.');
  return value;
}

export function parseLocalOptions(argv: string[]): LocalOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '8080' },
      vms: { type: 'string', default: '3' },
      'hold-seconds': { type: 'string', default: String(DEFAULT_HOLD_SECONDS) },
      'access-code': { type: 'string' },
      'vms-per-address': { type: 'string', default: String(DEFAULT_ADDRESS_LIMIT.vms) },
      'vms-per-address-minutes': { type: 'string', default: String(DEFAULT_ADDRESS_LIMIT.windowSeconds / 60) },
      'release-failed-after': { type: 'string', default: String(DEFAULT_IDLE_RELEASE.failedAfterSeconds! / 60) },
      'release-unconnected-after': { type: 'string', default: String(DEFAULT_IDLE_RELEASE.unconnectedAfterSeconds! / 60) },
      'line-turn-minutes': { type: 'string', default: String(DEFAULT_LINE_POLICY.turnSeconds / 60) },
      'setup-script': { type: 'string' },
      'setup-check': { type: 'string' },
      'instance-type': { type: 'string', default: DEFAULT_INSTANCE_TYPE },
      'hourly-price': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  return {
    port: integer('port', values.port, 1, 65535),
    vms: integer('vms', values.vms, 0, 200),
    holdSeconds: integer('hold-seconds', values['hold-seconds'], 1, MAX_HOLD_SECONDS),
    accessCode: accessCode(values['access-code']),
    addressLimit: {
      vms: integer('vms-per-address', values['vms-per-address'], 1, 100_000),
      windowSeconds: 60 * integer('vms-per-address-minutes', values['vms-per-address-minutes'], 1, 1440),
    },
    idleRelease: {
      failedAfterSeconds: minutesOrOff('release-failed-after', values['release-failed-after']),
      unconnectedAfterSeconds: minutesOrOff('release-unconnected-after', values['release-unconnected-after']),
      warnBeforeSeconds: DEFAULT_IDLE_RELEASE.warnBeforeSeconds,
    },
    pricing: { instanceType: instanceType(values['instance-type']), hourlyPrice: hourlyPrice(values['hourly-price']) },
    line: { ...DEFAULT_LINE_POLICY, turnSeconds: 60 * integer('line-turn-minutes', values['line-turn-minutes'], 1, 60) },
    setupScript: setupScript(values['setup-script']),
    setupCheck: setupCheck(values['setup-check']),
    help: values.help,
  };
}
