import { Hono } from 'hono';
import { Logger, errorMessage } from '../core/log';
import { PgConnection } from '../store/pg-sql';
import { Sql } from '../store/sql';
import { selectDeliverable } from '../store/vms';
import { createAllocatorApp } from './app';
import { DeliveryBatcher } from './delivery-batcher';
import { FleetDoctor, FleetDoctorOptions } from './fleet-doctor';
import { FleetPower, FleetPowerOptions } from './instance-power';
import { HoldRegistry } from './holds';
import { IdleSweep, IdleSweepOptions } from './idle-sweep';
import { VmIdentityVerifier } from './identity';
import { VmUpdateListener } from './listener';

export interface AllocatorServiceOptions {
  sql: Sql;
  /** For the dedicated LISTEN connection (the cluster's writer endpoint in AWS). */
  listenConnection: PgConnection;
  identity: VmIdentityVerifier;
  holdSeconds: number;
  aliveGraceSeconds: number;
  /** Fleet health checks and repairs; off when unset. */
  doctor?: Omit<FleetDoctorOptions, 'sql' | 'log' | 'spares'>;
  /** Failed VMs replaced by spares that claim their names (EC2 only); off when unset. */
  spares?: FleetDoctorOptions['spares'];
  /** Termination protection and the warm pool (EC2 only); off when unset. */
  power?: Omit<FleetPowerOptions, 'sql' | 'log'>;
  /** VMs held by nobody go back to the pool; off when unset. */
  idleRelease?: Omit<IdleSweepOptions, 'sql' | 'log'>;
  log: Logger;
}

export interface AllocatorService {
  app: Hono;
  holds: HoldRegistry;
  listener: VmUpdateListener;
  doctor?: FleetDoctor;
  power?: FleetPower;
  idleSweep?: IdleSweep;
  start(): Promise<void>;
  /** Ends every hold with "nothing yet" and closes the LISTEN connection. */
  stop(): Promise<void>;
}

/** Wires the long-poll holds to the LISTEN connection and the HTTP routes. */
export function createAllocatorService(options: AllocatorServiceOptions): AllocatorService {
  const { sql, log } = options;
  const deliveries = new DeliveryBatcher(sql, log);
  const holds = new HoldRegistry((hostname) => deliveries.findDelivery(hostname), log);

  const recheckHeld = async () => {
    try {
      for (const hostname of await selectDeliverable(sql, holds.hostnames())) holds.wake(hostname);
    } catch (error) {
      log.warn('allocator.recheck_failed', { reason: errorMessage(error) });
    }
  };

  const listener = new VmUpdateListener({
    connection: options.listenConnection,
    onUpdate: (update) => {
      if (update.state === 'assigned' || update.state === 'resetting') holds.wake(update.hostname);
    },
    onListening: () => void recheckHeld(),
    log,
  });

  const app = createAllocatorApp({
    sql,
    holds,
    identity: options.identity,
    holdSeconds: options.holdSeconds,
    aliveGraceSeconds: options.aliveGraceSeconds,
    isListening: () => listener.isListening,
    isReady: () => listener.hasListened,
    delivered: (hostname, assignmentId) => deliveries.delivered(hostname, assignmentId),
    spares: options.spares?.group,
    log,
  });

  const doctor = options.doctor && new FleetDoctor({ ...options.doctor, spares: options.spares, sql, log });
  const power = options.power && new FleetPower({ ...options.power, sql, log });
  const idleSweep = options.idleRelease && new IdleSweep({ ...options.idleRelease, sql, log });

  return {
    app,
    holds,
    listener,
    doctor,
    power,
    idleSweep,
    async start() {
      doctor?.start();
      power?.start();
      idleSweep?.start();
      await listener.start();
    },
    async stop() {
      holds.endAll();
      await doctor?.stop();
      await power?.stop();
      await idleSweep?.stop();
      await listener.stop();
    },
  };
}
