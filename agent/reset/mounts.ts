import { IdRange, inRanges } from './accounts';

export interface Mount {
  mountPoint: string;
  fsType: string;
  superOptions: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mounts of a /proc/<pid>/mountinfo text. */
export function parseMountInfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0 || fields.length < separator + 4) continue;
    mounts.push({ mountPoint: unescape(fields[4]), fsType: fields[separator + 1], superOptions: fields[separator + 3] });
  }
  return mounts;
}

function within(candidate: string, dir: string, includeDir: boolean): boolean {
  return (includeDir && candidate === dir) || candidate.startsWith(`${dir.replace(/\/+$/, '')}/`);
}

/**
 * What a participant can have left mounted: anything at or below their home or runtime folder,
 * below a shared temporary folder, and every FUSE mount of theirs wherever it is. Deepest first,
 * so each lazy unmount finds its mount still there.
 */
export function mountsToUnmount(
  mounts: Mount[],
  places: { home: string; runtimeDir: string; tempDirs: string[] },
  uids: IdRange[],
): string[] {
  const chosen = mounts.filter((mount) => {
    const fuseUser = /^fuse/.test(mount.fsType) ? /(?:^|,)user_id=(\d+)/.exec(mount.superOptions)?.[1] : undefined;
    return (
      within(mount.mountPoint, places.home, true) ||
      within(mount.mountPoint, places.runtimeDir, true) ||
      places.tempDirs.some((dir) => within(mount.mountPoint, dir, false)) ||
      (fuseUser !== undefined && inRanges(Number(fuseUser), uids))
    );
  });
  const unique = [...new Set(chosen.map((mount) => mount.mountPoint))];
  return unique.sort((a, b) => b.split('/').length - a.split('/').length || b.length - a.length);
}
