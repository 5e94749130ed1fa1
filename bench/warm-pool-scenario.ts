import { PoolVm, decideWarmPool } from '../core/warm-pool';
import { summarize } from './stats';

/** An event simulated minute by minute for the warm-pool controller (no VMs really start). */
export interface WarmPoolScenario {
  /** Seats: the most VMs (`vmCount`). */
  maxVms: number;
  /** Free VMs kept ahead of demand (`warmVms`). */
  warmVms: number;
  /** Participants who really come, out of the seats. */
  participants: number;
  arrivalMinutes: number;
  eventMinutes: number;
  /** Every n-th participant leaves after `leaveAfterMinutes`; their VM is reset and free again. */
  leaverEvery: number;
  leaveAfterMinutes: number;
  coldBootMinutes: number;
  restartMinutes: number;
  resetMinutes: number;
  graceMinutes: number;
  tickSeconds: number;
  /**
   * As deployed (nested stacks): every seat's VM was booted by the deploy and the free ones
   * beyond warmVms stopped, so more capacity is a restart. Otherwise (an Auto Scaling group)
   * only warmVms VMs exist at the start and more capacity is a cold boot.
   */
  preBooted: boolean;
}

export const DEFAULT_WARM_POOL_SCENARIO: WarmPoolScenario = {
  maxVms: 300,
  warmVms: 20,
  participants: 300,
  arrivalMinutes: 20,
  eventMinutes: 180,
  leaverEvery: 10,
  leaveAfterMinutes: 60,
  coldBootMinutes: 7,
  restartMinutes: 1.5,
  resetMinutes: 1,
  graceMinutes: 10,
  tickSeconds: 10,
  preBooted: true,
};

type SimVm = { name: string; state: 'free' | 'busy' | 'starting' | 'stopped'; readyAtMs: number; freeSinceMs: number; leavesAtMs: number };

const MINUTE = 60_000;

/**
 * Arrivals are front-loaded, as at a workshop's start: participant i of n arrives at
 * arrivalMinutes·(i/n)², so half of them come in the first quarter of the window.
 */
export function simulateWarmPool(scenario: WarmPoolScenario) {
  const settings = { warmVms: scenario.warmVms, maxVms: scenario.maxVms, graceMs: scenario.graceMinutes * MINUTE };
  const arrivals = Array.from(
    { length: scenario.participants },
    (_, i) => scenario.arrivalMinutes * MINUTE * (i / scenario.participants) ** 2,
  );
  const vms: SimVm[] = Array.from(
    { length: scenario.preBooted ? scenario.maxVms : Math.min(scenario.warmVms, scenario.maxVms) },
    (_, i) => ({
      name: `vm-${i + 1}`,
      state: i < scenario.warmVms ? 'free' : 'stopped',
      readyAtMs: 0,
      freeSinceMs: 0,
      leavesAtMs: Infinity,
    }),
  );
  const queue: { participant: number; arrivedMs: number }[] = [];
  const waits: number[] = [];
  let nextArrival = 0;
  let runningMs = 0;
  let peakRunning = 0;
  const tickMs = scenario.tickSeconds * 1000;

  for (let now = 0; now < scenario.eventMinutes * MINUTE; now += tickMs) {
    while (nextArrival < arrivals.length && arrivals[nextArrival] <= now)
      queue.push({ participant: nextArrival, arrivedMs: arrivals[nextArrival++] });
    for (const vm of vms) {
      if (vm.state === 'starting' && vm.readyAtMs <= now) Object.assign(vm, { state: 'free', freeSinceMs: now });
      if (vm.state === 'busy' && vm.leavesAtMs <= now)
        Object.assign(vm, { state: 'starting', readyAtMs: now + scenario.resetMinutes * MINUTE, leavesAtMs: Infinity });
    }
    for (const vm of vms) {
      if (queue.length === 0) break;
      if (vm.state !== 'free') continue;
      const { participant, arrivedMs } = queue.shift()!;
      waits.push((now - arrivedMs) / MINUTE);
      const leaves = (participant + 1) % scenario.leaverEvery === 0;
      Object.assign(vm, { state: 'busy', leavesAtMs: leaves ? now + scenario.leaveAfterMinutes * MINUTE : Infinity });
    }
    const decision = decideWarmPool(vms as PoolVm[], queue.length, now, settings);
    for (const name of decision.restart)
      Object.assign(
        vms.find((vm) => vm.name === name)!,
        { state: 'starting', readyAtMs: now + scenario.restartMinutes * MINUTE },
      );
    for (let i = 0; i < decision.launch; i += 1) {
      vms.push({
        name: `vm-${vms.length + 1}`,
        state: 'starting',
        readyAtMs: now + scenario.coldBootMinutes * MINUTE,
        freeSinceMs: 0,
        leavesAtMs: Infinity,
      });
    }
    for (const name of decision.stop)
      Object.assign(
        vms.find((vm) => vm.name === name)!,
        { state: 'stopped' },
      );
    const running = vms.filter((vm) => vm.state !== 'stopped').length;
    peakRunning = Math.max(peakRunning, running);
    runningMs += running * tickMs;
  }
  // Pre-booted VMs ran once at deploy: their boot, then the grace period before the first stop.
  const deployVmHours = scenario.preBooted
    ? ((scenario.maxVms - scenario.warmVms) * (scenario.coldBootMinutes + scenario.graceMinutes)) / 60
    : 0;
  const vmHours = runningMs / (60 * MINUTE) + deployVmHours;
  const preProvisionedVmHours = (scenario.maxVms * scenario.eventMinutes) / 60;
  return {
    scenario: 'warmpool',
    seats: scenario.maxVms,
    preBooted: scenario.preBooted,
    warmVms: scenario.warmVms,
    participants: scenario.participants,
    vmHours: Math.round(vmHours),
    deployVmHours: Math.round(deployVmHours),
    preProvisionedVmHours,
    savedPercent: Math.round((1 - vmHours / preProvisionedVmHours) * 1000) / 10,
    peakRunningVms: peakRunning,
    waitMinutes: summarize(waits),
    neverServed: scenario.participants - waits.length,
  };
}
