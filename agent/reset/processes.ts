import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { IdRange, inRanges } from './accounts';

/** Live (not zombie) processes any of whose real, effective, saved or file-system uids is in `ranges`. */
export async function processesOf(ranges: IdRange[], procDir = '/proc'): Promise<number[]> {
  const pids = (await readdir(procDir)).filter((name) => /^\d+$/.test(name));
  const found: number[] = [];
  await Promise.all(
    pids.map(async (pid) => {
      const status = await readFile(path.join(procDir, pid, 'status'), 'utf8').catch(() => '');
      const uids = /^Uid:\s+(.*)$/m.exec(status)?.[1].split(/\s+/).map(Number) ?? [];
      const zombie = /^State:\s+[ZX]/m.test(status);
      if (!zombie && uids.some((uid) => inRanges(uid, ranges))) found.push(Number(pid));
    }),
  );
  return found.sort((a, b) => a - b);
}

/**
 * kill(-1, SIGKILL) from a process running as `uid`: the kernel signals every process that uid
 * may signal in one go, so a process that keeps forking cannot outrun it, and that includes the
 * members of user namespaces the uid owns (their subordinate uids). It fails quietly when the uid
 * is at its process limit; the caller's scan kills what remains as root.
 */
function killAllAs(uid: number, gid: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', 'process.kill(-1, "SIGKILL")'], { uid, gid, stdio: 'ignore', env: {} });
    child.once('error', () => resolve());
    child.once('exit', () => resolve());
  });
}

/**
 * Ends every process of the old account and its subordinate ids, again and again until none is
 * left, or fails after `deadlineMs` naming how many remain.
 */
export async function endProcesses(
  account: { uid: number; gid: number },
  ranges: IdRange[],
  deadlineMs: number,
  procDir = '/proc',
): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    await killAllAs(account.uid, account.gid);
    const remaining = await processesOf(ranges, procDir);
    if (remaining.length === 0) return;
    for (const pid of remaining) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone in the meantime.
      }
    }
    if (Date.now() > until)
      throw new Error(
        `${remaining.length} processes of the old account still run after ${deadlineMs / 1000} s (pids ${remaining.slice(0, 10).join(' ')}).`,
      );
    await sleep(100);
  }
}
