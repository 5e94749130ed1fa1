import { newAppRole } from '../store/app-role';
import { createLogger } from '../core/log';
import { MIN_SECRET_LENGTH, generateSecret } from '../core/secrets';
import { LOCAL_USAGE, parseLocalOptions } from '../local/cli-options';
import { startLocalPostgres } from '../local/postgres';
import { runMain } from '../local/run-main';
import { startSimulatedFleet } from '../local/simulated-fleet';
import { DEFAULT_REQUEST_LIMITS, startLocalStack } from '../local/stack';

/** A secret from the environment, or a generated one that is printed once. */
function secretFromEnv(name: string): { value: string; generated: boolean } {
  const supplied = process.env[name] || undefined;
  if (supplied !== undefined && supplied.length < MIN_SECRET_LENGTH)
    throw new Error(`${name} must be at least ${MIN_SECRET_LENGTH} characters long.`);
  return supplied ? { value: supplied, generated: false } : { value: generateSecret(), generated: true };
}

function describeSecret(name: string, secret: { value: string; generated: boolean }): string {
  return secret.generated ? `${secret.value} (generated; set ${name} to choose one)` : `(from ${name})`;
}

async function main(): Promise<number> {
  let options;
  let fleetToken;
  let adminSecret;
  try {
    options = parseLocalOptions(process.argv.slice(2));
    fleetToken = secretFromEnv('LABLINK_FLEET_TOKEN');
    adminSecret = secretFromEnv('LABLINK_ADMIN_SECRET');
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${LOCAL_USAGE}`);
    return 2;
  }
  if (options.help) {
    console.log(LOCAL_USAGE);
    return 0;
  }
  const log = createLogger('text');
  // Listened for from the start, so a Ctrl-C while starting still shuts down in order (and deletes the data).
  // npm runs this with `node --import tsx`, not the tsx CLI: that parent relays the signal and SIGKILLs this
  // process unless it acknowledges within 30 ms, which on a busy machine cut the shutdown short and left the data.
  const stopRequested = new Promise<void>((resolve) => {
    process.on('SIGINT', resolve);
    process.on('SIGTERM', resolve);
  });

  console.log('Starting PostgreSQL…');
  const postgres = await startLocalPostgres();
  console.log(`PostgreSQL data: ${postgres.dataDir} (deleted when LabLink stops)`);
  const cleanups: (() => Promise<void>)[] = [() => postgres.stop()];
  const shutdown = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: Error) => console.error(error.message));
  };
  try {
    const stack = await startLocalStack({
      databaseUrl: postgres.url,
      // A new password each run, known only to this process: never printed.
      appRole: newAppRole(),
      fleetToken: fleetToken.value,
      adminSecret: adminSecret.value,
      port: options.port,
      holdSeconds: options.holdSeconds,
      accessCode: options.accessCode,
      requestLimits: DEFAULT_REQUEST_LIMITS,
      addressLimit: options.addressLimit,
      idleRelease: options.idleRelease,
      pricing: options.pricing,
      line: options.line,
      log,
    });
    cleanups.push(() => stack.close());
    const fleet = await startSimulatedFleet({
      count: options.vms,
      allocatorUrl: stack.url,
      fleetToken: fleetToken.value,
      ...(options.setupScript || options.setupCheck ? { setup: { script: options.setupScript, check: options.setupCheck } } : {}),
      onOutput: (name, line, stream) => {
        if (stream === 'stderr') console.error(`[${name}] ${line}`);
      },
    });
    cleanups.push(() => fleet.stop());

    console.log(`\nLabLink is running.\n  Form:          ${stack.url}/`);
    console.log(`  Admin:         ${stack.url}/admin  (user admin)`);
    console.log(`  Admin secret:  ${describeSecret('LABLINK_ADMIN_SECRET', adminSecret)}`);
    console.log(`  Fleet token:   ${describeSecret('LABLINK_FLEET_TOKEN', fleetToken)}`);
    if (options.accessCode) console.log('  Access code:   required (the one given with --access-code)');
    console.log(`  Simulated VMs: ${fleet.vms.map((vm) => vm.name).join(', ') || 'none'}`);
    if (options.setupScript || options.setupCheck)
      console.log('  Setup:         each VM runs it before joining the pool; progress and output on the admin page');
    console.log('Press Ctrl-C to stop.\n');
  } catch (error) {
    console.error(`LabLink could not start: ${(error as Error).message}`);
    await shutdown();
    return 1;
  }

  await stopRequested;
  console.log('\nStopping…');
  await shutdown();
  return 0;
}

runMain(main);
