// The system under test for `npm run bench`: the local stack (allocator and form handlers on
// one port) over the given database, without simulated VMs. No request limits unless the
// optional fifth argument (JSON) sets the stack's policies, as the capacity scenario does.
// With LABLINK_BENCH_TRACE set, it records a trace (bench/server-trace.ts) and writes it as one
// JSON line each time a line arrives on its standard input.
import readline from 'node:readline';
import { newAppRole } from '../store/app-role';
import { silentLogger } from '../core/log';
import { LocalStackOptions, startLocalStack } from '../local/stack';
import { recordServerTrace } from './server-trace';

/** What a scenario may set: the policies it runs on a compressed clock. */
export type BenchStackPolicies = Pick<LocalStackOptions, 'addressLimit' | 'idleRelease' | 'idleSweepIntervalMs' | 'line'>;

async function main(): Promise<void> {
  const trace = process.env.LABLINK_BENCH_TRACE ? recordServerTrace() : undefined;
  const [databaseUrl, holdSeconds, fleetToken, policies] = process.argv.slice(2);
  const stack = await startLocalStack({
    databaseUrl,
    appRole: newAppRole(),
    fleetToken,
    adminSecret: fleetToken,
    holdSeconds: Number(holdSeconds),
    aliveGraceSeconds: 600,
    // Every simulated participant comes from 127.0.0.1 unless a scenario says otherwise: the per-address limit would stop them.
    addressLimit: null,
    ...(policies ? (JSON.parse(policies) as BenchStackPolicies) : {}),
    log: silentLogger,
  });
  process.stdout.write(`${JSON.stringify({ url: stack.url })}\n`);
  if (trace) readline.createInterface({ input: process.stdin }).on('line', () => process.stdout.write(`${JSON.stringify(trace.take())}\n`));
  process.once('SIGTERM', () => void stack.close().then(() => process.exit(0)));
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
