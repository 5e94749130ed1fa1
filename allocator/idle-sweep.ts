import { IdleReleasePolicy } from '../core/idle-release';
import { Logger } from '../core/log';
import { releaseIdleVms } from '../store/idle-deadlines';
import { Sql } from '../store/sql';
import { Periodic } from './periodic';

export interface IdleSweepOptions {
  sql: Sql;
  policy: IdleReleasePolicy;
  intervalMs: number;
  log: Logger;
}

/**
 * Gives VMs held by nobody back to the pool. Every allocator task may run it: a VM is released
 * by one statement that re-checks it once locked, so two sweeps release it once.
 */
export class IdleSweep {
  private readonly periodic: Periodic;

  constructor(private readonly options: IdleSweepOptions) {
    this.periodic = new Periodic(() => this.sweep(), options.intervalMs, options.log, 'idle_release.failed');
  }

  async sweep(): Promise<void> {
    for (const vm of await releaseIdleVms(this.options.sql, this.options.policy)) {
      this.options.log.info('vm.idle_released', { hostname: vm.hostname, reason: vm.reason, resetting: vm.resetting });
    }
  }

  start(): void {
    this.periodic.start();
  }

  stop(): Promise<void> {
    return this.periodic.stop();
  }
}
