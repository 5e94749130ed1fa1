import { idleReleaseFromEnv } from '../core/idle-release';
import { createLogger, errorMessage } from '../core/log';
import { DELIVERY_WARM_UP } from '../store/vms';
import { PgSql } from '../store/pg-sql';
import { handleUnexpectedErrors } from '../http/errors';
import { closeServer, listen } from '../http/node-server';
import { readAllocatorConfig } from './allocator-config';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { spareRegistry } from '../store/replacement';
import { Ec2Rebooter, embeddedMetricsSink } from './fleet-doctor';
import { Ec2InstancePower } from './instance-power';
import { identityVerifierFor } from './identity-from-config';
import { AwsSparesGroup } from './spares';
import { createAllocatorPool } from './pool';
import { IDLE_TIMEOUT_MARGIN_SECONDS } from '../contract/timeouts';
import { createAllocatorService } from './service';

/** A free VM beyond the warm target runs this long before it is stopped: a late wave of participants finds it. */
const WARM_POOL_GRACE_MS = 10 * 60_000;

/** The allocator as it runs on ECS Fargate: the VMs' long-polls, one LISTEN connection, a small pool. */
async function main(): Promise<void> {
  const config = readAllocatorConfig(process.env);
  const log = createLogger(config.logFormat);
  const pool = createAllocatorPool(config.database);
  const ec2 = config.identity.mode === 'ec2' ? new EC2Client({ region: config.identity.region }) : undefined;
  const sql = new PgSql(pool);
  const service = createAllocatorService({
    sql,
    listenConnection: config.database,
    identity: identityVerifierFor(config.identity, spareRegistry(sql)),
    holdSeconds: config.holdSeconds,
    aliveGraceSeconds: config.aliveGraceSeconds,
    doctor: {
      policy: config.repairPolicy,
      intervalMs: 30_000,
      rebooter: ec2 && new Ec2Rebooter(ec2),
      metrics: config.identity.mode === 'ec2' ? embeddedMetricsSink(config.identity.fleet) : undefined,
    },
    idleRelease: { policy: idleReleaseFromEnv(process.env), intervalMs: 30_000 },
    power: ec2 && { power: new Ec2InstancePower(ec2), intervalMs: 15_000, warmVms: config.warmVms, graceMs: WARM_POOL_GRACE_MS },
    spares:
      ec2 && config.spares && config.identity.mode === 'ec2'
        ? {
            group: new AwsSparesGroup(ec2, new AutoScalingClient({ region: config.identity.region }), config.spares.groupName),
            maxReplacements: config.spares.maxReplacements,
            names: config.spares.names,
          }
        : undefined,
    log,
  });
  // Serve first, so health checks get an answer (503 "starting") while LISTEN is still
  // connecting, and a task that never reaches its database is seen as unhealthy.
  const { server, port } = await listen(handleUnexpectedErrors(service.app, log), {
    hostname: '0.0.0.0',
    port: config.port,
    keepAliveSeconds: config.holdSeconds + IDLE_TIMEOUT_MARGIN_SECONDS + 5,
  });
  log.info('allocator.started', { port, holdSeconds: config.holdSeconds, identity: config.identity.mode });

  // ECS sends SIGTERM before a deployment replaces the task: answer every hold so agents re-poll at once.
  const shutdown = async () => {
    log.info('allocator.stopping', { heldPolls: service.holds.size });
    await service.stop();
    await closeServer(server);
    await pool.end();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
  // Alongside LISTEN's first connect; an unreachable database is retried by LISTEN and by the first requests.
  void sql.warm(DELIVERY_WARM_UP).catch((error: unknown) => log.warn('allocator.warm_up_failed', { reason: errorMessage(error) }));
  await service.start();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
