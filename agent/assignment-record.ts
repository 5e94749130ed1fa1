import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigurationOutcome } from '../contract/wire';

/** What the agent remembers of the last assignment, so start-host never runs twice for one. */
export interface AssignmentRecord {
  assignment: string;
  startedAt: string;
  outcome?: ConfigurationOutcome;
  message?: string;
}

const FILE_NAME = 'assignment.json';

export async function readAssignmentRecord(stateDir: string): Promise<AssignmentRecord | undefined> {
  try {
    return JSON.parse(await readFile(path.join(stateDir, FILE_NAME), 'utf8')) as AssignmentRecord;
  } catch {
    return undefined;
  }
}

/** Written atomically (temp file, then rename) so a crash never leaves half a record. */
export async function writeAssignmentRecord(stateDir: string, record: AssignmentRecord): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const target = path.join(stateDir, FILE_NAME);
  await writeFile(`${target}.tmp`, JSON.stringify(record), { mode: 0o600 });
  await rename(`${target}.tmp`, target);
}
