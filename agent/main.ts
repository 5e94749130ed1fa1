import { createLogger } from '../core/log';
import { Agent } from './agent';
import { readAgentConfig } from './config';

const log = createLogger(process.env.LABLINK_LOG_FORMAT === 'json' ? 'json' : 'text');
let config;
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

new Agent(config, log).run(stop.signal).then(
  () => process.exit(0),
  (error: unknown) => {
    log.error('agent.crashed', { reason: (error as Error).message });
    process.exit(1);
  },
);
