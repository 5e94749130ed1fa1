import { createLogger } from '../core/log';
import { Agent } from './agent';
import { AllocatorClient } from './allocator-client';
import { AgentConfig, readAgentConfig } from './config';
import { HealthReporter } from './health-reporter';

const log = createLogger(process.env.LABLINK_LOG_FORMAT === 'json' ? 'json' : 'text');
let config: AgentConfig;
try {
  config = readAgentConfig(process.env);
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(2);
}

const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => stop.abort());
// Started by the local runner over IPC: leave when it goes, even if it was killed.
if (process.channel) process.on('disconnect', () => stop.abort());

const client = new AllocatorClient(config);
Promise.all([new Agent(config, client, log).run(stop.signal), new HealthReporter(config.vmName, client, config.health, log).run(stop.signal)]).then(
  () => process.exit(0),
  (error: unknown) => {
    log.error('agent.crashed', { reason: (error as Error).message });
    process.exit(1);
  },
);
