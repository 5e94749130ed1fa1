/** Milliseconds (or any value) to two decimals, as the reports print them. */
export const round = (value: number) => Math.round(value * 100) / 100;

/** Percentiles of a sample, nearest-rank, in the sample's unit. */
export function summarize(samples: number[]): { count: number; p50: number; p95: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]);
  return { count: sorted.length, p50: round(at(50)), p95: round(at(95)), p99: round(at(99)), max: round(sorted[sorted.length - 1] ?? NaN) };
}
