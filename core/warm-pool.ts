/**
 * The warm-pool controller's decision: which VMs to start and stop so that `warmVms` free
 * VMs run ahead of demand, never more than `maxVms` exist, and a VM with a participant is
 * never touched. Pure, so that the same function drives the fleet and the benchmark's
 * simulation.
 */

/** What the controller needs to know of one VM. */
export type PoolVm = { name: string; state: 'free'; freeSinceMs: number } | { name: string; state: 'busy' | 'starting' | 'stopped' };

export interface WarmPoolSettings {
  /** Free VMs to keep running ahead of demand (`warmVms`). */
  warmVms: number;
  /** The most VMs that may exist, stopped ones included (`vmCount`). */
  maxVms: number;
  /** How long a VM must have been free beyond the target before it is stopped. */
  graceMs: number;
}

export interface WarmPoolDecision {
  /** Stopped VMs to start again: faster than launching new ones. */
  restart: string[];
  /** New VMs to launch. */
  launch: number;
  /** Free VMs to stop, those free longest first. */
  stop: string[];
}

export function decideWarmPool(
  vms: readonly PoolVm[],
  participantsWaiting: number,
  nowMs: number,
  settings: WarmPoolSettings,
): WarmPoolDecision {
  const free = vms.filter((vm): vm is Extract<PoolVm, { state: 'free' }> => vm.state === 'free');
  const starting = vms.filter((vm) => vm.state === 'starting').length;
  const stopped = vms.filter((vm) => vm.state === 'stopped').map((vm) => vm.name);
  // Participants already waiting for a VM are demand on top of the warm target.
  const wanted = settings.warmVms + participantsWaiting;
  const coming = free.length + starting;

  if (coming < wanted) {
    const missing = wanted - coming;
    const restart = stopped.slice(0, missing);
    const launch = Math.max(0, Math.min(missing - restart.length, settings.maxVms - vms.length));
    return { restart, launch, stop: [] };
  }
  const surplus = coming - wanted;
  const stop = free
    .filter((vm) => nowMs - vm.freeSinceMs >= settings.graceMs)
    .sort((a, b) => a.freeSinceMs - b.freeSinceMs)
    .slice(0, surplus)
    .map((vm) => vm.name);
  return { restart: [], launch: 0, stop };
}
