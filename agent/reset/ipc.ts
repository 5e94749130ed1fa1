import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { IdRange, inRanges } from './accounts';

/** ipcrm's option for each kind of System V IPC object in /proc/sysvipc. */
const KINDS = [
  { file: 'shm', idColumn: 'shmid', option: '-m' },
  { file: 'msg', idColumn: 'msqid', option: '-q' },
  { file: 'sem', idColumn: 'semid', option: '-s' },
] as const;

/** `ipcrm` arguments for every System V IPC object owned or created by one of `uids`. */
export async function sysvIpcOwnedBy(sysvipcDir: string, uids: IdRange[]): Promise<string[][]> {
  const removals: string[][] = [];
  for (const kind of KINDS) {
    const text = await readFile(path.join(sysvipcDir, kind.file), 'utf8').catch(() => '');
    const [header, ...rows] = text.split('\n').map((line) => line.trim().split(/\s+/));
    if (!header) continue;
    const [id, uid, cuid] = [kind.idColumn, 'uid', 'cuid'].map((column) => header.indexOf(column));
    if (id < 0 || uid < 0 || cuid < 0) continue;
    for (const row of rows) {
      if (row.length > cuid && (inRanges(Number(row[uid]), uids) || inRanges(Number(row[cuid]), uids)))
        removals.push([kind.option, row[id]]);
    }
  }
  return removals;
}
