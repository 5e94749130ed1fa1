// Processes a test started and never ended: a child of a child (a CLI wrapper's real program, say)
// survives its parent's SIGKILL, is adopted by init, and runs on after the tests.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

/** Processes adopted by init (parent 1) whose command line names this checkout; none where there is no /proc. */
export function orphansOfThisCheckout() {
  let entries;
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const orphans = [];
  for (const pid of entries) {
    try {
      // The parent is the second field after the command name, which is in parentheses and may hold spaces.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (parent === 1 && args.includes(`${ROOT}${path.sep}`)) orphans.push({ pid: Number(pid), args });
    } catch {
      // Gone while we looked.
    }
  }
  return orphans;
}
