import { createLogger, teeLogger } from '../core/log';
import { Agent } from './agent';
import { AllocatorClient } from './allocator-client';
import { BootLogFollower } from './boot-log';
import { claimName } from './claim-name';
import { AgentConfig, readAgentConfig } from './agent-config';
import { HealthReporter } from './health-reporter';
import { LogShipper } from './log-shipper';
import { SetupRunner } from './setup';

/** How long a stopping agent tries to send its last lines. */
const LAST_LINES_TIMEOUT_MS = 2_000;

const localLog = createLogger(process.env.LABLINK_LOG_FORMAT === 'json' ? 'json' : 'text');
let config: AgentConfig;
try {
  config = readAgentConfig(process.env);
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(2);
}

/** The agent's loops until SIGTERM: register, wait for a participant, configure CRD, report health and logs. */
function runAgent(config: AgentConfig): void {
  const stop = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => stop.abort());
  // Started by the local runner over IPC: leave when it goes, even if it was killed.
  if (process.channel) process.on('disconnect', () => stop.abort());

  const client = new AllocatorClient(config);
  // The shipper starts first, so its first batch (which registers the VM) says "registering".
  const shipper = new LogShipper(config, client, localLog);
  const log = teeLogger(localLog, (level, line) => shipper.add('agent', level, line));
  const setup = new SetupRunner(
    config.setup,
    { vmName: config.vmName, stateDir: config.stateDir, desktopUser: config.desktopUser, retrySeconds: config.setupRetrySeconds },
    shipper,
    log,
  );
  const loops = [
    shipper.run(stop.signal),
    setup.run(stop.signal),
    new Agent(
      config,
      client,
      log,
      (step) => shipper.setStep(step),
      () => setup.whenReady(),
      () => setup.rerunAfterReset(),
    ).run(stop.signal),
    new HealthReporter(config.vmName, client, config.health, log, () => setup.requestRerun()).run(stop.signal),
  ];
  if (config.bootLog) loops.push(new BootLogFollower(config.bootLog, config.stateDir, shipper, log).run(stop.signal));
  Promise.all(loops).then(
    async () => {
      await shipper.flush(LAST_LINES_TIMEOUT_MS);
      process.exit(0);
    },
    async (error: unknown) => {
      log.error('agent.crashed', { reason: (error as Error).message });
      stop.abort();
      await shipper.flush(LAST_LINES_TIMEOUT_MS);
      process.exit(1);
    },
  );
}

// `agent.js claim-name`: a spare's boot script asks which name it takes over, then starts the agent with it.
if (process.argv[2] === 'claim-name') {
  claimName(new AllocatorClient(config)).then(
    (name) => {
      process.stdout.write(`${name}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exit(1);
    },
  );
} else {
  runAgent(config);
}
