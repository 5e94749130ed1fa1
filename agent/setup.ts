import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { SETUP_RESULT_FILE, SetupPlan, repositoryFolder } from '../contract/setup-plan';
import { MAX_STATUS_MESSAGE_LENGTH, SETUP_FAILURE_PREFIX } from '../contract/wire';
import { Logger, errorMessage } from '../core/log';
import { bootLineLevel } from './boot-log';
import { LogShipper, plainText } from './log-shipper';
import { WakeUp } from './wake-up';
/** The script gets this many tries; its exit status decides. */
export const SETUP_SCRIPT_ATTEMPTS = 3;
/** A conda environment or a big image takes a while; a hung step does not hold the VM forever. */
const STEP_TIMEOUT_MS = 2 * 60 * 60_000;
/** Output lines quoted in a failure's reason. */
const LAST_LINES = 5;
const RUNUSER = '/usr/sbin/runuser';
/** Runs the rest of argv in the user's home (runuser sets HOME). */
const IN_HOME = ['sh', '-c', 'cd && exec "$@"', 'sh'];
// Clones once; a re-run fetches instead. A ref is checked out either way.
const CLONE =
  'if [ -d "$2/.git" ]; then git -C "$2" fetch --tags origin; else git clone -- "$1" "$2"; fi && if [ -n "$3" ]; then git -C "$2" checkout "$3"; fi';
const LAUNCHER =
  'mkdir -p "$HOME/Desktop" && cat > "$HOME/Desktop/workshop-container.desktop" && chmod 755 "$HOME/Desktop/workshop-container.desktop"';

export interface SetupResult {
  fingerprint: string;
  ok: boolean;
  /** The failed step. */
  step?: string;
  reason?: string;
}

interface StepOutcome {
  ok: boolean;
  /** Why it failed, without the output (that comes from the last lines). */
  reason?: string;
}

interface SetupStep {
  name: string;
  run: (signal: AbortSignal) => Promise<StepOutcome>;
}

export interface SetupRunnerOptions {
  vmName: string;
  stateDir: string;
  /** Repository, image and check belong to this user; unset: the agent's own user (local mode). */
  desktopUser?: string;
  /** Wait before the script's second try; doubled before each further one. */
  retrySeconds: number;
  /** What switches to the desktop user; a test puts a stand-in that records its argv here. */
  runuser?: string;
}

/** Opened when the setup passed, closed while it runs: the agent polls for participants only when open. */
class Gate {
  private opened = false;
  private release: () => void = () => undefined;
  private promise = this.pending();

  private pending(): Promise<void> {
    return new Promise((resolve) => (this.release = resolve));
  }

  close(): void {
    if (!this.opened) return;
    this.opened = false;
    this.promise = this.pending();
  }

  open(): void {
    this.opened = true;
    this.release();
  }

  wait(): Promise<void> {
    return this.promise;
  }
}

/**
 * The workshop's own software on this VM, before it joins the pool: the repository cloned,
 * the container image pulled with its launcher, the setup script run (retried), the check
 * passed. Each step is the VM's step on the one progress channel and its output goes there as
 * `setup` lines; the environment of each step holds none of the agent's settings, so no
 * secret reaches the output. A failure takes the VM out of the pool with the step and the last
 * lines; the admin may ask for a re-run, which the agent hears through its health reports.
 */
export class SetupRunner {
  private readonly gate = new Gate();
  private rerun = false;
  /** The last command's last lines of output, quoted when its step fails. */
  private lastLines: string[] = [];
  private readonly wakeUp = new WakeUp();

  constructor(
    private readonly plan: SetupPlan | undefined,
    private readonly options: SetupRunnerOptions,
    private readonly shipper: LogShipper,
    private readonly log: Logger,
  ) {}

  /** Resolves once the setup passed (at once when there is none). */
  whenReady(): Promise<void> {
    return this.gate.wait();
  }

  requestRerun(): void {
    if (!this.plan) {
      this.log.warn('agent.setup_rerun_ignored', { reason: 'this VM has no setup' });
      return;
    }
    this.rerun = true;
    this.wakeUp.ring();
  }

  /**
   * The desktop user's home was just recreated, so what the setup put there is gone: run it again.
   * The gate closes at once, so whenReady() waits for this run, not for the one before.
   */
  rerunAfterReset(): void {
    if (!this.plan) return;
    this.gate.close();
    this.rerun = true;
    this.wakeUp.ring();
  }

  async run(signal: AbortSignal): Promise<void> {
    if (!this.plan) return this.gate.open();
    const previous = await this.readResult();
    if (previous?.ok && previous.fingerprint === (await this.fingerprint())) {
      this.log.info('agent.setup_already_done', { vm: this.options.vmName });
      this.gate.open();
    } else {
      await this.runOnce(signal);
    }
    while (!signal.aborted) {
      if (!this.rerun) await this.wakeUp.wait(signal);
      if (signal.aborted) break;
      this.rerun = false;
      this.log.info('agent.setup_rerun', { vm: this.options.vmName });
      this.gate.close();
      await this.runOnce(signal);
    }
  }

  private get resultFile(): string {
    return path.join(this.options.stateDir, SETUP_RESULT_FILE);
  }

  private async readResult(): Promise<SetupResult | undefined> {
    return readFile(this.resultFile, 'utf8').then(
      (text) => JSON.parse(text) as SetupResult,
      () => undefined,
    );
  }

  /** The plan and the script's content: a changed setup runs again on the next start. */
  private async fingerprint(): Promise<string> {
    const script = this.plan?.script ? await readFile(this.plan.script).catch(() => Buffer.alloc(0)) : Buffer.alloc(0);
    return createHash('sha256').update(JSON.stringify(this.plan)).update(script).digest('hex');
  }

  private async runOnce(signal: AbortSignal): Promise<void> {
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
    if (this.plan?.workDir) await mkdir(this.plan.workDir, { recursive: true });
    await rm(this.resultFile, { force: true });
    const fingerprint = await this.fingerprint();
    for (const step of this.steps()) {
      this.shipper.setStep(step.name);
      this.log.info('agent.setup_step', { vm: this.options.vmName, step: step.name });
      const outcome = await step.run(signal).catch((error: unknown): StepOutcome => ({ ok: false, reason: errorMessage(error) }));
      if (signal.aborted) return;
      if (!outcome.ok) {
        const reason = failureReason(step.name, outcome.reason ?? 'failed', this.lastLines);
        this.log.error('agent.setup_failed', { vm: this.options.vmName, step: step.name, reason: outcome.reason });
        await this.writeResult({ fingerprint, ok: false, step: step.name, reason });
        this.shipper.setStep('setup-failed');
        this.shipper.setSetupFailure(reason);
        return;
      }
    }
    await this.writeResult({ fingerprint, ok: true });
    this.log.info('agent.setup_passed', { vm: this.options.vmName });
    this.shipper.setSetupFailure(null);
    // The agent polls (again) now: say so, also after a re-run.
    this.shipper.setStep('waiting');
    this.gate.open();
  }

  private async writeResult(result: SetupResult): Promise<void> {
    await writeFile(this.resultFile, `${JSON.stringify(result)}\n`);
  }

  private steps(): SetupStep[] {
    const plan = this.plan!;
    const steps: SetupStep[] = [];
    if (plan.repository) {
      const { repository, repositoryRef } = plan;
      steps.push({
        name: 'setup-repository',
        run: (signal) => this.exec(['sh', '-c', CLONE, 'sh', repository, repositoryFolder(repository), repositoryRef ?? ''], true, signal),
      });
    }
    if (plan.containerImage) {
      const image = plan.containerImage;
      steps.push({
        name: 'setup-container',
        run: async (signal) => {
          const pulled = await this.exec(['podman', 'pull', image], true, signal);
          return pulled.ok ? this.exec(['sh', '-c', LAUNCHER], true, signal, launcherFile(image)) : pulled;
        },
      });
    }
    if (plan.script) {
      const script = plan.script;
      steps.push({ name: 'setup-script', run: (signal) => this.withRetries(() => this.exec(['bash', script], false, signal), signal) });
    }
    if (plan.check) steps.push({ name: 'setup-check', run: (signal) => this.exec(['bash', '-lc', plan.check!], true, signal) });
    return steps;
  }

  private async withRetries(attempt: () => Promise<StepOutcome>, signal: AbortSignal): Promise<StepOutcome> {
    let outcome: StepOutcome = { ok: false };
    for (let tries = 1; tries <= SETUP_SCRIPT_ATTEMPTS && !signal.aborted; tries += 1) {
      outcome = await attempt();
      if (outcome.ok) return outcome;
      if (tries === SETUP_SCRIPT_ATTEMPTS) return { ok: false, reason: `${outcome.reason} (${SETUP_SCRIPT_ATTEMPTS} attempts)` };
      const seconds = this.options.retrySeconds * 2 ** (tries - 1);
      this.shipper.add(
        'setup',
        'warn',
        `Setup script attempt ${tries} of ${SETUP_SCRIPT_ATTEMPTS} ${outcome.reason}; trying again in ${seconds} s.`,
      );
      await sleep(seconds * 1000, undefined, { signal }).catch(() => undefined);
    }
    return outcome;
  }

  /** Runs argv without a shell of ours, its output shipped line by line; as the desktop user when `asDesktopUser` and there is one. */
  private exec(argv: string[], asDesktopUser: boolean, signal: AbortSignal, input?: string): Promise<StepOutcome> {
    const { desktopUser } = this.options;
    const [file, ...args] =
      asDesktopUser && desktopUser ? [this.options.runuser ?? RUNUSER, '-u', desktopUser, '--', ...IN_HOME, ...argv] : argv;
    const cwd = this.plan?.workDir ?? this.options.stateDir;
    this.lastLines = [];
    return new Promise((resolve) => {
      const child = spawn(file, args, {
        cwd,
        env: this.environment(),
        detached: true,
        stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
      // The whole process group: a script's own children must not outlive a timeout.
      const kill = () => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // Already gone.
        }
      };
      const timer = setTimeout(kill, STEP_TIMEOUT_MS);
      signal.addEventListener('abort', kill, { once: true });
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(input);
      for (const stream of [child.stdout!, child.stderr!])
        readline.createInterface({ input: stream }).on('line', (line) => this.output(line));
      child.on('error', (error) => {
        clearTimeout(timer);
        resolve({ ok: false, reason: `could not start ${argv[0]}: ${error.message}` });
      });
      child.on('close', (code, killedBy) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', kill);
        if (code === 0) resolve({ ok: true });
        else resolve({ ok: false, reason: code === null ? `was stopped (${killedBy})` : `exited with status ${code}` });
      });
    });
  }

  private output(raw: string): void {
    const text = plainText(raw);
    if (text.trim() === '') return;
    this.shipper.add('setup', bootLineLevel(text), text);
    this.lastLines.push(text);
    if (this.lastLines.length > LAST_LINES) this.lastLines.shift();
  }

  /** Only what a setup needs: never the agent's own settings (a fleet token among them). */
  private environment(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      LABLINK_VM_NAME: this.options.vmName,
      DEBIAN_FRONTEND: 'noninteractive',
      GIT_TERMINAL_PROMPT: '0',
      ...(this.options.desktopUser ? { LABLINK_DESKTOP_USER: this.options.desktopUser } : {}),
    };
    for (const name of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'USER', 'LOGNAME'])
      if (process.env[name] !== undefined) env[name] = process.env[name];
    // systemd gives a root service no HOME, and installers (conda's among them) want one.
    env.HOME ??= os.homedir();
    return env;
  }
}

function launcherFile(image: string): string {
  return `[Desktop Entry]
Type=Application
Name=Workshop container
Comment=Starts ${image}
Exec=xfce4-terminal --hold --command="podman run --rm -it ${image}"
Icon=utilities-terminal
Terminal=false
`;
}

/** The step, why, and the last lines of output, in one line that fits a VM's failure. */
function failureReason(step: string, why: string, lastLines: string[]): string {
  const reason = `${SETUP_FAILURE_PREFIX} at ${step}: ${why}.${lastLines.length > 0 ? ` Last lines: ${lastLines.join(' | ')}` : ''}`;
  return reason.length > MAX_STATUS_MESSAGE_LENGTH ? `${reason.slice(0, MAX_STATUS_MESSAGE_LENGTH - 1)}…` : reason;
}
