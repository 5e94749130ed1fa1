import { PoolVm, WarmPoolSettings, decideWarmPool } from '../../core/warm-pool';

const MINUTE = 60_000;
const NOW = 100 * MINUTE;
const settings: WarmPoolSettings = { warmVms: 3, maxVms: 6, graceMs: 5 * MINUTE };

const free = (name: string, minutesFree: number): PoolVm => ({ name, state: 'free', freeSinceMs: NOW - minutesFree * MINUTE });
const vm = (name: string, state: 'busy' | 'starting' | 'stopped'): PoolVm => ({ name, state });

describe('warm pool decisions', () => {
  it('launches VMs until the warm target is running or starting', () => {
    expect(decideWarmPool([free('a', 1)], 0, NOW, settings)).toEqual({ restart: [], launch: 2, stop: [] });
    expect(decideWarmPool([free('a', 1), vm('b', 'starting'), vm('c', 'starting')], 0, NOW, settings)).toEqual({
      restart: [],
      launch: 0,
      stop: [],
    });
  });

  it('after an assignment, starts another VM to keep the target free', () => {
    const before = [free('a', 1), free('b', 1), free('c', 1)];
    expect(decideWarmPool(before, 0, NOW, settings).launch).toBe(0);
    const after = [vm('a', 'busy'), free('b', 1), free('c', 1)];
    expect(decideWarmPool(after, 0, NOW, settings)).toEqual({ restart: [], launch: 1, stop: [] });
  });

  it('restarts stopped VMs before launching new ones', () => {
    const vms = [vm('a', 'busy'), vm('b', 'stopped'), free('c', 1)];
    expect(decideWarmPool(vms, 0, NOW, settings)).toEqual({ restart: ['b'], launch: 1, stop: [] });
  });

  it('never goes beyond the maximum, stopped VMs counted', () => {
    const vms = [vm('a', 'busy'), vm('b', 'busy'), vm('c', 'busy'), vm('d', 'busy'), vm('e', 'busy')];
    expect(decideWarmPool(vms, 4, NOW, settings)).toEqual({ restart: [], launch: 1, stop: [] });
    expect(decideWarmPool([...vms, vm('f', 'busy')], 4, NOW, settings)).toEqual({ restart: [], launch: 0, stop: [] });
  });

  it('counts participants waiting for a VM as demand on top of the target', () => {
    expect(decideWarmPool([free('a', 1), free('b', 1), free('c', 1)], 2, NOW, settings)).toEqual({ restart: [], launch: 2, stop: [] });
  });

  it('stops free VMs beyond the target only after the grace period, longest free first, never a busy one', () => {
    const vms = [vm('busy', 'busy'), free('new', 1), free('old', 30), free('older', 60), free('b', 10), free('c', 10)];
    expect(decideWarmPool(vms, 0, NOW, settings)).toEqual({ restart: [], launch: 0, stop: ['older', 'old'] });
    const recent = [free('a', 1), free('b', 2), free('c', 3), free('d', 4)];
    expect(decideWarmPool(recent, 0, NOW, settings)).toEqual({ restart: [], launch: 0, stop: [] });
  });
});
