import { lstat } from 'node:fs/promises';
import { IdRange } from './accounts';
import { runCommand } from './run-command';

export interface SweepTools {
  find: string[];
  rm: string[];
}

export interface SweepTarget {
  /** Each is searched on its own file system only (root, tmpfs mounts). */
  roots: string[];
  uids: IdRange[];
  gids: IdRange[];
}

/** At most this much output from one search: a participant's millions of files fail the reset, clearly. */
const MAX_LISTING_BYTES = 64 * 1024 * 1024;
const RM_BATCH = 200;

function ownerTest(option: '-uid' | '-gid', ranges: IdRange[]): string[] {
  return ranges.flatMap((range, index) => [
    ...(index > 0 ? ['-o'] : []),
    '(',
    option,
    `+${range.first - 1}`,
    option,
    `-${range.last + 1}`,
    ')',
  ]);
}

/** find's argv: entries owned by the ids (a folder once, not what is in it), never following links, never leaving the root's file system. */
function findArgv(tools: SweepTools, root: string, target: SweepTarget): string[] {
  const test = [...ownerTest('-uid', target.uids), ...(target.gids.length > 0 ? ['-o', ...ownerTest('-gid', target.gids)] : [])];
  return [...tools.find, root, '-xdev', '-mindepth', '1', '(', ...test, ')', '-prune', '-print0'];
}

async function listOwned(tools: SweepTools, target: SweepTarget, until: number): Promise<string[]> {
  const found = new Set<string>();
  for (const root of target.roots) {
    if (
      !(await lstat(root).then(
        (info) => info.isDirectory(),
        () => false,
      ))
    )
      continue;
    const listing = await runCommand(findArgv(tools, root, target), {
      timeoutMs: Math.max(1000, until - Date.now()),
      maxBufferBytes: MAX_LISTING_BYTES,
    });
    for (const entry of listing.split('\0')) if (entry) found.add(entry);
  }
  return [...found];
}

/**
 * Deletes every file, folder, socket or link owned by the ids under the roots, with `rm -rf
 * --one-file-system` (which unlinks links and never follows them). Run only once no process of
 * those ids exists, so nobody can swap a folder for a link under it. Searches again afterwards
 * and fails naming what is left; fails too when the deadline passes.
 */
export async function sweepOwnedFiles(tools: SweepTools, target: SweepTarget, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  const owned = await listOwned(tools, target, until);
  for (let start = 0; start < owned.length; start += RM_BATCH) {
    await runCommand([...tools.rm, '-rf', '--one-file-system', '--', ...owned.slice(start, start + RM_BATCH)], {
      timeoutMs: Math.max(1000, until - Date.now()),
    });
  }
  const left = await listOwned(tools, target, until);
  if (left.length > 0) throw new Error(`${left.length} files of the old account are still there, e.g. ${left.slice(0, 3).join(', ')}.`);
}
