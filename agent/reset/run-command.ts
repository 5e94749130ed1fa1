import { execFile } from 'node:child_process';

export interface RunOptions {
  /** Exit codes that mean "nothing to do" rather than failure. */
  allowedExitCodes?: number[];
  timeoutMs: number;
  /** Output above this fails the command (a bound on what a participant can make the agent read). */
  maxBufferBytes?: number;
}

/**
 * Runs argv without a shell. A command that cannot start, exits with another code or runs past
 * its time fails, saying which; the caller names the reset step.
 */
export function runCommand(argv: string[], options: RunOptions): Promise<string> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: options.maxBufferBytes ?? 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (!error || (typeof error.code === 'number' && (options.allowedExitCodes ?? []).includes(error.code))) return resolve(stdout);
        const lastLine = `${stdout}\n${stderr}`.trim().split('\n').pop()?.slice(0, 200) ?? '';
        const exit =
          error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER'
            ? `printed more than ${options.maxBufferBytes ?? 1024 * 1024} bytes`
            : error.killed
              ? `timed out after ${options.timeoutMs / 1000} s`
              : typeof error.code === 'number'
                ? `exited with code ${error.code}`
                : `failed (${error.code ?? error.message})`;
        reject(new Error(`${argv.join(' ')} ${exit}${lastLine ? `: ${lastLine}` : ''}`));
      },
    );
  });
}
