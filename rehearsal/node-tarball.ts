/**
 * A stand-in for the Node.js release tarball the user-data downloads
 * (`node-<version>-linux-<arch>.tar.xz`, extracted to /opt), built from the node binary
 * running the rehearsal: the container cannot reach nodejs.org.
 *
 * Only `node-<version>-linux-<arch>/bin/node` is included: the user-data links exactly
 * that. The directory is named after the version the user-data asks for, which may
 * differ from the binary's real version (then the agent runs on this machine's Node).
 * Host node (Debian/NodeSource builds need glibc >= 2.28) runs in bookworm (glibc 2.36).
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './util';

export interface NodeTarballOptions {
  /** Version in the file and directory name; default the running node's (process.version). */
  version?: string;
  arch?: string;
  /** Binary to pack; default the running node (process.execPath). */
  nodeBinary?: string;
}

export interface NodeTarball {
  /** Path of the .tar.xz on the host. */
  file: string;
  /** `node-<version>-linux-<arch>`: the top directory inside the tarball. */
  dirName: string;
  /** The tarball's file name, as in `https://nodejs.org/dist/<version>/<fileName>`. */
  fileName: string;
}

/** Builds the tarball once per (binary, version label) and returns the cached copy after. */
export async function buildNodeTarball(cacheDir: string, options: NodeTarballOptions = {}): Promise<NodeTarball> {
  const version = options.version ?? process.version;
  const arch = options.arch ?? 'x64';
  const binary = options.nodeBinary ?? process.execPath;
  const dirName = `node-${version}-linux-${arch}`;
  const fileName = `${dirName}.tar.xz`;
  // A changed binary (e.g. a node upgrade) gives a new cache entry.
  const { size, mtimeMs } = statSync(binary);
  const key = createHash('sha256')
    .update(JSON.stringify([binary, size, mtimeMs, dirName]))
    .digest('hex')
    .slice(0, 10);
  const dir = join(cacheDir, 'node-tarballs', key);
  const file = join(dir, fileName);
  if (existsSync(file)) return { file, dirName, fileName };

  await mkdir(dir, { recursive: true });
  const staging = await mkdtemp(join(dir, '.staging-'));
  try {
    await mkdir(join(staging, dirName, 'bin'), { recursive: true });
    await copyFile(binary, join(staging, dirName, 'bin', 'node'));
    const partial = join(staging, fileName);
    // xz -1: the ~100 MB binary packs in seconds instead of a minute at the default -6.
    await run('tar', ['--owner=0', '--group=0', '-cJf', partial, '-C', staging, dirName], {
      timeoutMs: 5 * 60_000,
      env: { ...process.env, XZ_OPT: '-1 -T0' },
    });
    await rename(partial, file); // Atomic: a half-written tarball is never found as cached.
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return { file, dirName, fileName };
}
