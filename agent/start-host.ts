import { execFile } from 'node:child_process';
import { CrdCommand, startHostArgs } from '../core/crd-command';

export type StartHostResult = { ok: true } | { ok: false; message: string };

const START_HOST_TIMEOUT_MS = 5 * 60_000;

/** Keeps a failure's reason short and free of the one-time code and the PIN. */
function describeFailure(output: string, secrets: string[], exit: string): string {
  let lastLine = output.trim().split('\n').pop() ?? '';
  for (const secret of secrets) lastLine = lastLine.split(secret).join('[redacted]');
  return `start-host ${exit}${lastLine ? `: ${lastLine.slice(0, 300)}` : ''}`;
}

/**
 * Runs CRD's start-host without a shell: argv rebuilt from the parsed code, the VM's
 * own name, and the PIN twice on stdin (so it never shows in the process list).
 */
export function runStartHost(path: string, command: CrdCommand, vmName: string, pin: string): Promise<StartHostResult> {
  return new Promise((resolve) => {
    const child = execFile(
      path,
      startHostArgs(command, vmName),
      { env: { ...process.env, DISPLAY: '' }, timeout: START_HOST_TIMEOUT_MS, maxBuffer: 1024 * 1024 },
      (error, stdout, stderr) => {
        if (!error) return resolve({ ok: true });
        const exit = typeof error.code === 'number' ? `exited with code ${error.code}` : error.killed ? 'timed out' : `failed (${error.code ?? error.message})`;
        resolve({ ok: false, message: describeFailure(`${stdout}\n${stderr}`, [command.code, pin], exit) });
      },
    );
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(`${pin}\n${pin}\n`);
  });
}
