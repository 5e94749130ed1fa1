import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

export interface RestartablePostgres {
  url: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A PostgreSQL of its own, in a child process, that the test can restart. */
export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  const root = path.join(__dirname, '..', '..');
  const child = spawn(path.join(root, 'node_modules', '.bin', 'tsx'), [path.join(__dirname, 'postgres-process.ts')], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await lines.next();
    if (line.done) throw new Error('the PostgreSQL process ended');
    return line.value;
  };
  const { url } = JSON.parse(await next()) as { url: string };
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    url,
    async restart() {
      child.stdin!.write('restart\n');
      if ((await next()) !== 'restarted') throw new Error('PostgreSQL did not restart');
    },
    async stop() {
      child.stdin!.end();
      await exited;
    },
  };
}
