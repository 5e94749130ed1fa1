/** Exponential backoff with jitter (half fixed, half random), so a fleet does not retry in lockstep. */
export function backoffDelay(failures: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 16));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
