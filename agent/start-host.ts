import { execFile } from 'node:child_process';
import { CrdCommand, startHostArgs } from '../core/crd-command';

export type StartHostResult = { ok: true } | { ok: false; message: string };

const START_HOST_TIMEOUT_MS = 5 * 60_000;
const RUNUSER = '/usr/sbin/runuser';

/** Keeps a failure's reason short and free of the one-time code and the PIN. */
function describeFailure(output: string, secrets: string[], exit: string): string {
  let lastLine = output.trim().split('\n').pop() ?? '';
  for (const secret of secrets) lastLine = lastLine.split(secret).join('[redacted]');
  return `start-host ${exit}${lastLine ? `: ${lastLine.slice(0, 300)}` : ''}`;
}

/** Only what start-host needs: never the agent's own settings (the fleet token among them). */
function startHostEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { DISPLAY: '' };
  for (const name of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'USER', 'LOGNAME'])
    if (process.env[name] !== undefined) env[name] = process.env[name];
  return env;
}

export interface StartHostTarget {
  startHostPath: string;
  vmName: string;
  desktopUser?: string;
}

/** The program and argv to run: start-host itself, or through runuser as the desktop user. */
export function startHostInvocation(target: StartHostTarget, command: CrdCommand): { file: string; args: string[] } {
  const args = startHostArgs(command, target.vmName);
  if (!target.desktopUser) return { file: target.startHostPath, args };
  return { file: RUNUSER, args: ['-u', target.desktopUser, '--', target.startHostPath, ...args] };
}

/**
 * Runs CRD's start-host without a shell: argv rebuilt from the parsed code, the VM's
 * own name, and the PIN twice on stdin (so it never shows in the process list).
 */
export function runStartHost(target: StartHostTarget, command: CrdCommand, pin: string): Promise<StartHostResult> {
  const { file, args } = startHostInvocation(target, command);
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { env: startHostEnvironment(), timeout: START_HOST_TIMEOUT_MS, maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        if (!error) return resolve({ ok: true });
        const exit =
          typeof error.code === 'number'
            ? `exited with code ${error.code}`
            : error.killed
              ? 'timed out'
              : `failed (${error.code ?? error.message})`;
        resolve({ ok: false, message: describeFailure(`${stdout}\n${stderr}`, [command.code, pin], exit) });
      },
    );
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(`${pin}\n${pin}\n`);
  });
}
