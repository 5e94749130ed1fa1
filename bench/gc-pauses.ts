import { PerformanceObserver, performance } from 'node:perf_hooks';
import { round } from './stats';

/** A span on the `process.hrtime` clock, in milliseconds. */
export interface Span {
  fromMs: number;
  toMs: number;
}

export const hrtimeMs = (at: bigint = process.hrtime.bigint()) => Number(at) / 1e6;

/** Records this process's garbage-collection pauses until `stop`. */
export function watchGcPauses(): { stop(): Span[] } {
  // performance.now() runs on the same monotonic clock from another origin: one offset converts.
  const offsetMs = hrtimeMs() - performance.now();
  const pauses: Span[] = [];
  const record = (entries: PerformanceEntry[]) =>
    pauses.push(...entries.map((entry) => ({ fromMs: entry.startTime + offsetMs, toMs: entry.startTime + entry.duration + offsetMs })));
  const observer = new PerformanceObserver((list) => record(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return {
    stop() {
      record(observer.takeRecords());
      observer.disconnect();
      return pauses;
    },
  };
}

/** How many samples a pause fell into, among all and among the `beyondP99` slowest ones. */
export function pausesInSamples(pauses: Span[], samples: Span[], beyondP99: number) {
  const paused = (sample: Span) => pauses.some((pause) => pause.fromMs < sample.toMs && pause.toMs > sample.fromMs);
  const bySlowness = [...samples].sort((a, b) => b.toMs - b.fromMs - (a.toMs - a.fromMs));
  return {
    pauses: pauses.length,
    longestMs: round(Math.max(0, ...pauses.map((pause) => pause.toMs - pause.fromMs))),
    samplesPaused: samples.filter(paused).length,
    beyondP99Paused: bySlowness.slice(0, beyondP99).filter(paused).length,
  };
}
