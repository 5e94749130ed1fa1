import { EC2Client, RebootInstancesCommand } from '@aws-sdk/client-ec2';
import { FleetCounts, RepairPolicy, claimReboots, fleetCounts, markFailed, retireVm, trackUnhealthy } from '../store/health';
import { Logger, errorMessage } from '../core/log';
import { Sql } from '../store/sql';
import { Periodic } from './periodic';
import { finalizeUnreportedDeliveries } from '../store/vms';
import {
  FleetNames,
  cancelReplacement,
  countSparesWanted,
  markSpareEnded,
  markSpareGone,
  requestReplacements,
  retireNamesBeyond,
  sparesToEnd,
} from '../store/replacement';
import { SparesGroup } from './spares';
import { instanceGone } from './instance-state';
import { Lease } from '../store/lease';

export interface Rebooter {
  /** `gone`: the instance no longer exists (the fleet was made smaller). */
  reboot(instanceId: string): Promise<'rebooted' | 'gone'>;
}

export class Ec2Rebooter implements Rebooter {
  constructor(private readonly ec2: EC2Client) {}

  async reboot(instanceId: string): Promise<'rebooted' | 'gone'> {
    if (await instanceGone(this.ec2, instanceId)) return 'gone';
    await this.ec2.send(new RebootInstancesCommand({ InstanceIds: [instanceId] }));
    return 'rebooted';
  }
}

/** Most of the fleet going silent at once means the allocator or the network is the problem, not the VMs. */
function looksLikeOutage(counts: FleetCounts): boolean {
  return counts.newly_stale >= 3 && counts.newly_stale * 2 > counts.total - counts.failed;
}

export type FleetMetricsSink = (counts: FleetCounts) => void;

/** CloudWatch embedded metric format: one log line becomes metrics, no API call needed. */
export function embeddedMetricsSink(
  fleet: string,
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): FleetMetricsSink {
  const names: [keyof FleetCounts, string][] = [
    ['free', 'FreeVms'],
    ['assigned', 'AssignedVms'],
    ['stale', 'StaleVms'],
    ['unhealthy', 'UnhealthyVms'],
    ['failed', 'FailedVms'],
  ];
  return (counts) =>
    write(
      JSON.stringify({
        _aws: {
          Timestamp: Date.now(),
          CloudWatchMetrics: [
            { Namespace: 'LabLink', Dimensions: [['Fleet']], Metrics: names.map(([, name]) => ({ Name: name, Unit: 'Count' })) },
          ],
        },
        Fleet: fleet,
        ...Object.fromEntries(names.map(([key, name]) => [name, counts[key]])),
      }),
    );
}

export interface FleetDoctorOptions {
  sql: Sql;
  policy: RepairPolicy;
  /** How VMs are rebooted; without one (local mode), an unhealthy VM goes straight to failed. */
  rebooter?: Rebooter;
  metrics?: FleetMetricsSink;
  log: Logger;
  intervalMs: number;
  /** A delivery to a VM that never reports (LabLink's own client) counts as configured after this long. */
  unreportedDeliveryFinalSeconds?: number;
  /** Failed VMs get a spare that takes over their name; without one (local mode), they stay failed. */
  spares?: { group: SparesGroup; maxReplacements: number; names?: FleetNames };
}

const SPARES_LEASE = 'spares';

/**
 * start-host takes seconds; LabLink's client runs it as soon as its poll is answered. Counted
 * within this plus one round of the doctor (30 s in AWS) after the delivery: before the
 * participant's page says "taking longer than usual" (SLOW_SETUP_SECONDS, 120 s after assignment).
 */
export const UNREPORTED_DELIVERY_FINAL_SECONDS = 60;

/**
 * Watches the fleet: starts each VM's "unhealthy since" clock, reboots VMs unhealthy for too
 * long (a few times, with a cool-down), then takes them out of the pool as failed, and with
 * spares replaces failed VMs nobody is on. VMs in use are left to the admin, and nothing is
 * repaired while most of the fleet is silent at once. Every allocator runs one; SKIP LOCKED
 * keeps two from rebooting or replacing the same VM.
 */
export class FleetDoctor {
  private readonly periodic: Periodic;
  /** Only the holder sizes the spares group. */
  private readonly sparesLease: Lease;

  constructor(private readonly options: FleetDoctorOptions) {
    this.periodic = new Periodic(() => this.tick(), options.intervalMs, options.log, 'fleet.check_failed');
    this.sparesLease = new Lease(options.sql, SPARES_LEASE, options.intervalMs);
  }

  async tick(): Promise<void> {
    const { sql, policy, rebooter, log } = this.options;
    for (const vm of await finalizeUnreportedDeliveries(
      sql,
      this.options.unreportedDeliveryFinalSeconds ?? UNREPORTED_DELIVERY_FINAL_SECONDS,
    )) {
      log.info('vm.assumed_configured', {
        hostname: vm.hostname,
        email: vm.email,
        reason: 'its client does not report how start-host ended',
      });
    }
    for (const change of await trackUnhealthy(sql, policy)) {
      if (change.unhealthy) log.warn('vm.unhealthy', { hostname: change.hostname });
      else log.info('vm.healthy_again', { hostname: change.hostname });
    }
    const counts = await fleetCounts(sql, policy.staleSeconds);
    if (looksLikeOutage(counts)) {
      log.error('fleet.mostly_silent', { stale: counts.stale, total: counts.total, action: 'no repairs until reports resume' });
      this.options.metrics?.(counts);
      return;
    }
    if (rebooter) {
      for (const claimed of await claimReboots(sql, policy)) {
        try {
          if ((await rebooter.reboot(claimed.instance_id)) === 'gone') {
            if (claimed.spare && this.options.spares) {
              await markSpareGone(sql, claimed.hostname);
              log.warn('vm.spare_gone', { hostname: claimed.hostname, instanceId: claimed.instance_id });
            } else {
              await retireVm(sql, claimed.hostname);
              log.info('vm.retired', { hostname: claimed.hostname, instanceId: claimed.instance_id });
            }
          } else {
            log.warn('vm.rebooted', { hostname: claimed.hostname, instanceId: claimed.instance_id, reboot: claimed.reboot_count });
          }
        } catch (error) {
          log.error('vm.reboot_failed', { hostname: claimed.hostname, reason: errorMessage(error) });
        }
      }
    }
    for (const failed of await markFailed(sql, policy)) {
      log.error('vm.failed', { hostname: failed.hostname, email: failed.email, reason: failed.failure });
    }
    if (this.options.spares) await this.replaceFailed(this.options.spares);
    this.options.metrics?.(await fleetCounts(sql, policy.staleSeconds));
  }

  private async replaceFailed({ group, maxReplacements, names }: NonNullable<FleetDoctorOptions['spares']>): Promise<void> {
    const { sql, log } = this.options;
    // A smaller fleet: CloudFormation deleted the named VMs beyond it, but not the spares holding their names.
    for (const vm of names ? await retireNamesBeyond(sql, names) : []) {
      log.info('vm.retired', { hostname: vm.hostname, instanceId: vm.instance_id, reason: 'the fleet is smaller now' });
    }
    for (const vm of await sparesToEnd(sql)) {
      try {
        await group.end(vm.instance_id);
        await markSpareEnded(sql, vm.hostname, vm.instance_id);
        log.info('vm.spare_ended', { hostname: vm.hostname, instanceId: vm.instance_id });
      } catch (error) {
        log.error('vm.spare_end_failed', { hostname: vm.hostname, instanceId: vm.instance_id, reason: errorMessage(error) });
      }
    }
    for (const request of await requestReplacements(sql, maxReplacements)) {
      try {
        if ((await group.retire(request.instance_id, request.spare)) === 'gone' && !request.spare) {
          // CloudFormation deleted it (the fleet shrank): the name goes with it.
          await retireVm(sql, request.hostname);
          log.info('vm.retired', { hostname: request.hostname, instanceId: request.instance_id });
        } else {
          log.warn('vm.replacing', { hostname: request.hostname, instanceId: request.instance_id, reason: request.failure });
        }
      } catch (error) {
        await cancelReplacement(sql, request.hostname);
        log.error('vm.replace_failed', { hostname: request.hostname, instanceId: request.instance_id, reason: errorMessage(error) });
      }
    }
    // One task sets the group's size, counted from the database, each round: two tasks racing
    // could lower it for a moment, and a value changed behind the allocator's back is put right.
    if (!(await this.sparesLease.take())) return;
    const wanted = await countSparesWanted(sql);
    try {
      await group.setDesiredCapacity(wanted);
    } catch (error) {
      log.error('fleet.spares_failed', { count: wanted, reason: errorMessage(error) });
    }
  }

  start(): void {
    this.periodic.start();
  }

  async stop(): Promise<void> {
    await this.periodic.stop();
    if (this.options.spares) await this.sparesLease.release();
  }
}
