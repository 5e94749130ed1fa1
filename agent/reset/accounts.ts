import { readFile, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';

/** Inclusive range of user or group ids. */
export interface IdRange {
  first: number;
  last: number;
}

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

/** Where the account databases are (tests pass their own files). */
export interface AccountFiles {
  passwd: string;
  group: string;
  subuid: string;
  subgid: string;
}

export const SYSTEM_ACCOUNT_FILES: AccountFiles = {
  passwd: '/etc/passwd',
  group: '/etc/group',
  subuid: '/etc/subuid',
  subgid: '/etc/subgid',
};

async function lines(file: string): Promise<string[][]> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '';
    throw error;
  });
  return text.split('\n').map((line) => line.split(':'));
}

/** The account's uid, gid, home and shell from a passwd file. */
export async function lookUpUser(user: string, passwdFile = SYSTEM_ACCOUNT_FILES.passwd): Promise<Account> {
  for (const fields of await lines(passwdFile)) {
    if (fields[0] === user && fields.length >= 7)
      return { name: user, uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5], shell: fields[6] };
  }
  throw new Error(`There is no user ${user} in ${passwdFile}.`);
}

/** The supplementary groups that list the user (the new account gets the same ones). */
export async function supplementaryGroups(user: string, groupFile: string): Promise<string[]> {
  return (await lines(groupFile)).filter((fields) => fields.length >= 4 && fields[3].split(',').includes(user)).map((fields) => fields[0]);
}

/** The user's subordinate id ranges (`name:first:count` lines; a line may name the user by uid). */
export async function subordinateRanges(account: Account, file: string): Promise<IdRange[]> {
  return (await lines(file))
    .filter((fields) => fields.length === 3 && (fields[0] === account.name || fields[0] === String(account.uid)))
    .map((fields) => ({ first: Number(fields[1]), last: Number(fields[1]) + Number(fields[2]) - 1 }))
    .filter((range) => Number.isInteger(range.first) && range.last >= range.first);
}

/** Where fresh desktop accounts come from: ids above what useradd ever picks itself. */
export interface AccountNumbering {
  /** Generation g's account has uid = gid = uidBase + g. */
  uidBase: number;
  /** Generation g's subordinate ids are subordinateBase + g × 65536, 65536 of them. */
  subordinateBase: number;
}

export const SUBORDINATE_COUNT = 65_536;
const GENERATION_FILE = 'desktop-account-generation';

/**
 * The next account's numbers: one more than the last generation this VM used (remembered in the
 * agent's state folder before the account exists, so a crash never hands the same uid out twice)
 * and past the current account's, so neither a lost state file nor an account made by hand brings an id back.
 */
export async function nextGeneration(
  stateDir: string,
  numbering: AccountNumbering,
  current: Account,
): Promise<{ uid: number; subordinate: IdRange }> {
  const file = path.join(stateDir, GENERATION_FILE);
  const stored = Number((await readFile(file, 'utf8').catch(() => '0')).trim()) || 0;
  const generation = Math.max(stored, current.uid - numbering.uidBase, 0) + 1;
  const subordinateFirst = numbering.subordinateBase + generation * SUBORDINATE_COUNT;
  if (subordinateFirst + SUBORDINATE_COUNT - 1 > 4_294_967_294 || numbering.uidBase + generation >= numbering.subordinateBase) {
    throw new Error(`Desktop account generation ${generation} is past the last id this VM can give out.`);
  }
  await writeFile(`${file}.new`, `${generation}\n`, { mode: 0o600 });
  await rename(`${file}.new`, file);
  return { uid: numbering.uidBase + generation, subordinate: { first: subordinateFirst, last: subordinateFirst + SUBORDINATE_COUNT - 1 } };
}

export function inRanges(id: number, ranges: IdRange[]): boolean {
  return ranges.some((range) => id >= range.first && id <= range.last);
}

export function formatRange(range: IdRange): string {
  return `${range.first}-${range.last}`;
}
