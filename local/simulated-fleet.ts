import { ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { buildAgentBundle } from '../agent/bundle';
import type { SetupPlan } from '../contract/setup-plan';

export const FAKE_START_HOST = path.join(__dirname, 'fake-start-host.mjs');
/** Stands in for the reset's `systemctl stop` and `pkill`: records its arguments. */
const FAKE_COMMAND = path.join(__dirname, 'fake-command.mjs');
/** The stand-in start-host's settings, in the simulated VM's home directory. */
const FAKE_CRD_SETTINGS = 'fake-crd.json';

/** What a simulated VM's boot script "printed": the steps a real one announces, so the dashboard has logs locally too. */
export const SIMULATED_BOOT_LOG = `LABLINK_STEP install-desktop
Simulated VM: no desktop to install.
LABLINK_STEP install-crd
Simulated VM: start-host is a stand-in that records its arguments instead of calling Google.
LABLINK_STEP install-node
Simulated VM: the agent runs on this machine's Node.js.
LABLINK_STEP start-agent
`;

export interface SimulatedVmOptions {
  name: string;
  allocatorUrl: string;
  fleetToken: string;
  agentBundle: string;
  /** Make the stand-in start-host fail with this message. */
  startHostFailure?: string;
  /** How long the stand-in start-host takes (Google takes a moment; tests stop the agent halfway). */
  startHostDelayMs?: number;
  /** More agent environment, such as LABLINK_IDENTITY=ec2 with a stand-in metadata service. */
  env?: Record<string, string>;
  /** The boot log the agent finds on its first start; SIMULATED_BOOT_LOG unless given. */
  bootLog?: string;
  /** The workshop's setup (script, check, repository…), run by the agent in this VM's own folder as the current user. */
  setup?: Omit<SetupPlan, 'workDir'>;
  onOutput?: (name: string, line: string, stream: 'stdout' | 'stderr') => void;
}

/**
 * One simulated VM: the real agent bundle with a stand-in start-host, its own state directory,
 * and a desktop user's home that a reset recreates from the VM's own skeleton folder.
 */
export class SimulatedVm {
  readonly recordFile: string;
  /** What the reset's stand-in commands were asked to do, one JSON line each. */
  readonly resetCommandsFile: string;
  readonly stateDir: string;
  /** The desktop user's home (HOME for the agent and start-host). */
  readonly homeDir: string;
  /** What a reset recreates the home from, like /etc/skel. */
  readonly skelDir: string;
  /** Stands in for /tmp: a reset deletes what the desktop user left there. */
  readonly tempDir: string;
  /** The simulated user-data log (LABLINK_BOOT_LOG); append to it to simulate a boot script at work. */
  readonly bootLogFile: string;
  /** The setup plan (LABLINK_SETUP) when the VM has a setup. */
  readonly setupFile: string;
  private child: ChildProcess | undefined;

  private constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly options: SimulatedVmOptions,
  ) {
    this.recordFile = path.join(dir, 'start-host-calls.jsonl');
    this.resetCommandsFile = path.join(dir, 'reset-commands.jsonl');
    this.stateDir = path.join(dir, 'state');
    this.homeDir = path.join(dir, 'home');
    this.skelDir = path.join(dir, 'skel');
    this.tempDir = path.join(dir, 'tmp');
    this.bootLogFile = path.join(dir, 'user-data.log');
    this.setupFile = path.join(dir, 'setup.json');
  }

  static async create(options: SimulatedVmOptions): Promise<SimulatedVm> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `lablink-${options.name}-`));
    const vm = new SimulatedVm(options.name, dir, options);
    await writeFile(vm.bootLogFile, options.bootLog ?? SIMULATED_BOOT_LOG);
    await mkdir(vm.homeDir);
    await mkdir(vm.skelDir);
    await mkdir(vm.tempDir);
    await writeFile(path.join(vm.skelDir, '.profile'), '# a new desktop user\n');
    if (options.setup) await writeFile(vm.setupFile, JSON.stringify({ ...options.setup, workDir: path.join(dir, 'setup') }));
    return vm;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts (or restarts) the agent process; its state directory survives restarts. */
  start(): void {
    if (this.running) return;
    // The agent hands start-host only a minimal environment, so the stand-in reads its settings from HOME;
    // the skeleton has them too, so a home recreated by a reset still has them.
    const settings = JSON.stringify({
      record: this.recordFile,
      failure: this.options.startHostFailure,
      delayMs: this.options.startHostDelayMs ?? 0,
    });
    for (const dir of [this.homeDir, this.skelDir]) writeFileSync(path.join(dir, FAKE_CRD_SETTINGS), settings);
    const fakeCommand = `${process.execPath} ${FAKE_COMMAND} ${this.resetCommandsFile}`;
    const child = spawn(process.execPath, [this.options.agentBundle], {
      env: {
        PATH: process.env.PATH,
        HOME: this.homeDir,
        LABLINK_ALLOCATOR_URL: this.options.allocatorUrl,
        LABLINK_FLEET_TOKEN: this.options.fleetToken,
        LABLINK_VM_NAME: this.name,
        LABLINK_START_HOST: FAKE_START_HOST,
        LABLINK_STATE_DIR: this.stateDir,
        LABLINK_BOOT_LOG: this.bootLogFile,
        // No GPU on a simulated VM unless a test puts a stand-in nvidia-smi in place.
        LABLINK_NVIDIA_SMI: path.join(this.dir, 'no-gpu', 'nvidia-smi'),
        // No real CRD host runs here: the simulated host "runs" while the agent does.
        LABLINK_CRD_PROCESS: this.options.agentBundle,
        LABLINK_DESKTOP_HOME: this.homeDir,
        LABLINK_SKEL_DIR: this.skelDir,
        LABLINK_RESET_TEMP_DIRS: this.tempDir,
        LABLINK_RESET_STOP_CRD: `${fakeCommand} systemctl stop chrome-remote-desktop@simulated`,
        LABLINK_RESET_END_SESSION: `${fakeCommand} pkill -KILL -u simulated`,
        ...(this.options.setup ? { LABLINK_SETUP: this.setupFile } : {}),
        ...this.options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    for (const stream of ['stdout', 'stderr'] as const) {
      readline.createInterface({ input: child[stream]! }).on('line', (line) => this.options.onOutput?.(this.name, line, stream));
    }
    this.child = child;
  }

  /** Stops the agent; `SIGKILL` simulates a crash or a hung machine's agent dying. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

export interface SimulatedFleet {
  vms: SimulatedVm[];
  agentBundle: string;
  stop(): Promise<void>;
}

/** Builds the agent bundle once and starts `count` simulated VMs named `<prefix>-1…n`. */
export async function startSimulatedFleet(
  options: Omit<SimulatedVmOptions, 'name' | 'agentBundle'> & { count: number; namePrefix?: string },
): Promise<SimulatedFleet> {
  const bundleDir = await mkdtemp(path.join(os.tmpdir(), 'lablink-agent-'));
  const agentBundle = path.join(bundleDir, 'agent.js');
  await writeFile(agentBundle, buildAgentBundle());
  const vms: SimulatedVm[] = [];
  for (let index = 1; index <= options.count; index += 1) {
    const vm = await SimulatedVm.create({ ...options, name: `${options.namePrefix ?? 'lablink-vm'}-${index}`, agentBundle });
    vm.start();
    vms.push(vm);
  }
  return {
    vms,
    agentBundle,
    async stop() {
      await Promise.all(vms.map((vm) => vm.dispose()));
      await rm(bundleDir, { recursive: true, force: true });
    },
  };
}
