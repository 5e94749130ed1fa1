import {
  DescribeInstancesCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
  StartInstancesCommand,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  claimStarts,
  claimStops,
  forgetProtection,
  protectionChanges,
  recordProtection,
  replacedInstances,
  warmPoolVms,
} from '../store/fleet-power';
import { Lease } from '../store/lease';
import { Logger, errorMessage } from '../core/log';
import { Sql } from '../store/sql';
import { PoolVm, decideWarmPool } from '../core/warm-pool';
import { DEFAULT_LINE_POLICY, countInLine } from '../store/waiting-line';
import { Periodic } from './periodic';

/** What the fleet's power needs from EC2. */
export interface InstancePower {
  setTerminationProtection(instanceId: string, protect: boolean): Promise<void>;
  start(instanceIds: string[]): Promise<void>;
  stop(instanceIds: string[]): Promise<void>;
  /** Those of these instances that are running. */
  running(instanceIds: string[]): Promise<string[]>;
}

const FILTER_VALUES_PER_CALL = 200;

export class Ec2InstancePower implements InstancePower {
  constructor(private readonly ec2: EC2Client) {}

  async setTerminationProtection(instanceId: string, protect: boolean): Promise<void> {
    await this.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: instanceId, DisableApiTermination: { Value: protect } }));
  }

  async start(instanceIds: string[]): Promise<void> {
    await this.ec2.send(new StartInstancesCommand({ InstanceIds: instanceIds }));
  }

  async stop(instanceIds: string[]): Promise<void> {
    await this.ec2.send(new StopInstancesCommand({ InstanceIds: instanceIds }));
  }

  async running(instanceIds: string[]): Promise<string[]> {
    const found: string[] = [];
    // By filter, not InstanceIds: an id EC2 has forgotten (the fleet shrank) is no error then.
    // EC2 takes at most 200 values per filter. Only `running`: a starting instance is CloudFormation's to finish.
    for (let first = 0; first < instanceIds.length; first += FILTER_VALUES_PER_CALL) {
      const answer = await this.ec2.send(
        new DescribeInstancesCommand({
          Filters: [
            { Name: 'instance-id', Values: instanceIds.slice(first, first + FILTER_VALUES_PER_CALL) },
            { Name: 'instance-state-name', Values: ['running'] },
          ],
        }),
      );
      found.push(
        ...(answer.Reservations ?? [])
          .flatMap((reservation) => reservation.Instances ?? [])
          .flatMap((instance) => (instance.InstanceId ? [instance.InstanceId] : [])),
      );
    }
    return found;
  }
}

export interface FleetPowerOptions {
  sql: Sql;
  power: InstancePower;
  log: Logger;
  intervalMs: number;
  /** Free VMs to keep running ahead of demand; the warm pool is off when unset. */
  warmVms?: number;
  /** How long a VM beyond the warm target stays free before it is stopped. */
  graceMs: number;
}

const WARM_POOL_LEASE = 'warm-pool';

/**
 * Keeps EC2 in step with the database: a VM with a participant has termination protection
 * (CloudFormation cannot delete it when the fleet shrinks), and with a warm pool only
 * `warmVms` free VMs run, the others stopped and started again as participants arrive. One
 * allocator task at a time (the lease holder) runs the warm pool, so two never both start VMs
 * for the same demand.
 */
export class FleetPower {
  private readonly periodic: Periodic;
  /** Only the holder runs the warm pool. */
  private readonly warmPoolLease: Lease;
  /** When each VM was first seen free: only the controller's own view, rebuilt after a restart. */
  private readonly freeSince = new Map<string, number>();
  /** Whether this allocator has protected every VM with a participant once since it started. */
  private protectionReapplied = false;

  constructor(private readonly options: FleetPowerOptions) {
    this.periodic = new Periodic(() => this.tick(), options.intervalMs, options.log, 'fleet.power_failed');
    this.warmPoolLease = new Lease(options.sql, WARM_POOL_LEASE, options.intervalMs);
  }

  async tick(now = Date.now()): Promise<void> {
    if (!this.protectionReapplied) {
      // Once per start: the expiry function and the teardown lift the protection in EC2 without telling the database.
      await forgetProtection(this.options.sql);
      this.protectionReapplied = true;
    }
    await this.protect();
    await this.keepReplacedStopped().catch((error: unknown) =>
      this.options.log.warn('fleet.replaced_check_failed', { reason: errorMessage(error) }),
    );
    if (this.options.warmVms === undefined) return;
    if (await this.warmPoolLease.take()) await this.balance(now);
  }

  private async protect(): Promise<void> {
    const { sql, power, log } = this.options;
    for (const change of await protectionChanges(sql)) {
      try {
        await power.setTerminationProtection(change.instance_id, change.protect);
        await recordProtection(sql, change.hostname, change.protect);
      } catch (error) {
        log.warn('vm.protection_failed', { hostname: change.hostname, protect: change.protect, reason: errorMessage(error) });
      }
    }
  }

  /** A deploy that changes the boot script starts every named VM again, the replaced ones too. */
  private async keepReplacedStopped(): Promise<void> {
    const { sql, power, log } = this.options;
    const replaced = await replacedInstances(sql);
    if (replaced.length === 0) return;
    const running = await power.running(replaced.map((vm) => vm.instance_id));
    if (running.length === 0) return;
    await power.stop(running);
    log.info('fleet.replaced_stopped', { instances: running.join(' ') });
  }

  private async balance(now: number): Promise<void> {
    const { sql, power, log } = this.options;
    const rows = await warmPoolVms(sql);
    const vms: PoolVm[] = rows.map((row) => {
      if (row.state !== 'free') {
        this.freeSince.delete(row.hostname);
        return { name: row.hostname, state: row.state };
      }
      if (!this.freeSince.has(row.hostname)) this.freeSince.set(row.hostname, now);
      return { name: row.hostname, state: 'free', freeSinceMs: this.freeSince.get(row.hostname)! };
    });
    // Every VM already exists (CloudFormation made them): more capacity means starting stopped ones,
    // one more for each participant in the waiting line. The default turn counts who waits: close enough for demand.
    const waiting = await countInLine(sql, DEFAULT_LINE_POLICY);
    const decision = decideWarmPool(vms, waiting, now, {
      warmVms: this.options.warmVms!,
      maxVms: vms.length,
      graceMs: this.options.graceMs,
    });
    const starting = await claimStarts(sql, decision.restart);
    const stopping = await claimStops(sql, decision.stop);
    if (starting.length > 0) {
      await power.start(starting.map((vm) => vm.instance_id));
      log.info('fleet.warm_pool_started', { vms: starting.map((vm) => vm.hostname).join(' ') });
    }
    if (stopping.length > 0) {
      await power.stop(stopping.map((vm) => vm.instance_id));
      log.info('fleet.warm_pool_stopped', { vms: stopping.map((vm) => vm.hostname).join(' ') });
    }
  }

  start(): void {
    this.periodic.start();
  }

  async stop(): Promise<void> {
    await this.periodic.stop();
    if (this.options.warmVms !== undefined) await this.warmPoolLease.release();
  }
}
