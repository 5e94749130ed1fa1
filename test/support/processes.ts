import { ChildProcess, SpawnOptions, spawn } from 'node:child_process';

/**
 * The allocator service as a process: Node itself with tsx as its loader, not tsx's CLI, which
 * runs the program in a child of its own that SIGSTOP and SIGKILL would miss (left running, orphaned).
 */
export const ALLOCATOR_PROCESS = { command: process.execPath, args: ['--import', 'tsx', 'allocator/main.ts'] };

export interface CapturedProcess {
  child: ChildProcess;
  /** Everything it printed so far, stdout and stderr together. */
  output(): string;
  exited: Promise<number | null>;
}

/** Starts a real child process and keeps what it prints, for assertions on its output. */
export function spawnCapturing(command: string, args: string[], options: SpawnOptions): CapturedProcess {
  let output = '';
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}
