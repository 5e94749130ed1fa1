/**
 * A private network namespace for one rehearsal.
 *
 * The container joins this namespace instead of the host's, so iptables rules the
 * user-data adds stay inside it, and addresses such as the instance metadata service
 * (169.254.169.254) can be served locally without touching the host's interfaces.
 * The namespace has only a loopback interface: nothing inside can reach the outside, and
 * the rehearsal runs its own servers (allocator, stand-ins) inside it too.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { onCleanup, run, runSync } from './util';

/** The EC2 instance metadata address; the stand-in IMDS listens on it inside the netns. */
export const IMDS_ADDRESS = '169.254.169.254';

export interface Netns {
  name: string;
  /** Bind-mounted namespace file, for `systemd-nspawn --network-namespace-path=`. */
  path: string;
  /** Deletes the namespace (stop the servers and the container in it first). Idempotent. */
  remove(): void;
}

/**
 * Creates `lablink-rehearsal-<pid>[-suffix]` with loopback up and extra addresses on lo
 * (by default the IMDS address, so a server can listen on the real IMDS address), and a veth
 * pair per name in `interfaces` (its peer `<name>-peer` up), so the container's
 * systemd-networkd has a link with a carrier to configure, as a VM has its network card.
 */
export async function createNetns(
  options: { suffix?: string; loopbackAddresses?: readonly string[]; interfaces?: readonly string[] } = {},
): Promise<Netns> {
  const name = `lablink-rehearsal-${process.pid}${options.suffix ? `-${options.suffix}` : ''}`;
  const path = join('/run/netns', name);
  // A namespace of the same name can only be a leftover of a dead process with our pid.
  if (existsSync(path)) runSync('ip', ['netns', 'delete', name]);
  await run('ip', ['netns', 'add', name], { timeoutMs: 10_000 });
  const remove = onCleanup(() => {
    if (existsSync(path)) runSync('ip', ['netns', 'delete', name]);
  });
  try {
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up'], { timeoutMs: 10_000 });
    for (const address of options.loopbackAddresses ?? [`${IMDS_ADDRESS}/32`]) {
      await run('ip', ['-n', name, 'address', 'add', address, 'dev', 'lo'], { timeoutMs: 10_000 });
    }
    for (const link of options.interfaces ?? []) {
      await run('ip', ['-n', name, 'link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}-peer`], { timeoutMs: 10_000 });
      await run('ip', ['-n', name, 'link', 'set', `${link}-peer`, 'up'], { timeoutMs: 10_000 });
    }
  } catch (err) {
    remove();
    throw err;
  }
  return { name, path, remove };
}

/**
 * Deletes `lablink-rehearsal-<pid>*` namespaces whose rehearsal process is gone (it was
 * SIGKILLed), after killing what still runs in them (the servers). Returns their names.
 */
export async function removeStaleNetns(): Promise<string[]> {
  const list = await run('ip', ['netns', 'list'], { timeoutMs: 10_000 });
  const removed: string[] = [];
  for (const name of list.stdout.split('\n').map((l) => l.split(' ')[0])) {
    const m = /^lablink-rehearsal-(\d+)(?:-|$)/.exec(name ?? '');
    if (!m || !name || Number(m[1]) === process.pid || existsSync(`/proc/${m[1]}`)) continue;
    const pids = await run('ip', ['netns', 'pids', name], { timeoutMs: 10_000, allowFailure: true });
    for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    runSync('ip', ['netns', 'delete', name]);
    removed.push(name);
  }
  return removed;
}
