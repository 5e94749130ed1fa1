// The system under test for `npm run bench`: the local stack (allocator and form handlers on
// one port) over the given database, without simulated VMs or request limits.
import { newAppRole } from '../core/app-role';
import { silentLogger } from '../core/log';
import { startLocalStack } from '../local/stack';

async function main(): Promise<void> {
  const [databaseUrl, holdSeconds, fleetToken] = process.argv.slice(2);
  const stack = await startLocalStack({
    databaseUrl,
    appRole: newAppRole(),
    fleetToken,
    adminSecret: fleetToken,
    holdSeconds: Number(holdSeconds),
    aliveGraceSeconds: 600,
    // Every simulated participant comes from 127.0.0.1: the per-address limit would stop them.
    addressLimit: null,
    log: silentLogger,
  });
  process.stdout.write(`${JSON.stringify({ url: stack.url })}\n`);
  process.once('SIGTERM', () => void stack.close().then(() => process.exit(0)));
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
