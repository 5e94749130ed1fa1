import { execFile } from 'node:child_process';
import { readFile, readdir, statfs } from 'node:fs/promises';
import os from 'node:os';
import { GpuStatus } from '../contract/health-report';

/** True when a process whose command line contains `name` is running (read from /proc). */
export async function processRunning(name: string): Promise<boolean> {
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
  } catch {
    return false;
  }
  for (const pid of pids) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.replace(/\0/g, ' ').includes(name)) return true;
  }
  return false;
}

export async function readHeartbeat(
  crdProcess: string,
): Promise<{ bootId: string; uptimeSeconds: number; crdRunning: boolean; diskFreeMb: number }> {
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
  const disk = await statfs('/');
  return {
    bootId,
    uptimeSeconds: Math.round(os.uptime()),
    crdRunning: await processRunning(crdProcess),
    diskFreeMb: Math.round((disk.bavail * disk.bsize) / (1024 * 1024)),
  };
}

const GPU_CHECK_TIMEOUT_MS = 15_000;

/** nvidia-smi present and answering: ok; missing: n/a (no GPU on this machine); anything else: failed. */
export function checkGpu(nvidiaSmi: string): Promise<{ status: GpuStatus; detail?: string }> {
  return new Promise((resolve) => {
    execFile(
      nvidiaSmi,
      ['--query-gpu=name,temperature.gpu,utilization.gpu', '--format=csv,noheader'],
      { timeout: GPU_CHECK_TIMEOUT_MS },
      (error, stdout, stderr) => {
        if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') return resolve({ status: 'n/a' });
        if (error) {
          const reason = `${stderr}`.trim().split('\n').pop() || (error.killed ? 'timed out' : `exit code ${String(error.code)}`);
          return resolve({ status: 'failed', detail: reason.slice(0, 200) });
        }
        resolve({ status: 'ok', detail: stdout.trim().split('\n')[0]?.slice(0, 200) });
      },
    );
  });
}
