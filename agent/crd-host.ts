import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** Where start-host writes the host's registration (`host#<hash>.json`) for `user`. */
export function crdConfigDir(options: { desktopUser?: string; override?: string; home?: string }): string {
  if (options.override) return options.override;
  const home = options.desktopUser ? path.join('/home', options.desktopUser) : (options.home ?? '/root');
  return path.join(home, '.config', 'chrome-remote-desktop');
}

/** True when start-host registered a host at or after `since`: it finished even if we did not see it finish. */
export async function hostRegisteredSince(dir: string, since: Date): Promise<boolean> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return false;
  }
  for (const name of names.filter((candidate) => /^host#.*\.json$/.test(candidate))) {
    const { mtimeMs } = await stat(path.join(dir, name));
    if (mtimeMs >= since.getTime()) return true;
  }
  return false;
}
