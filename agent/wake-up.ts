/** Resolves once `promise` settles or `signal` aborts, whichever comes first, and leaves no listener behind. */
export function untilSettledOrAborted(promise: Promise<unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    promise.then(done, done);
  });
}

/** How a loop sleeps until it has work: `wait` resolves at the next `ring` (or abort); a ring with no one waiting is lost. */
export class WakeUp {
  private ringing: () => void = () => undefined;

  wait(signal: AbortSignal): Promise<void> {
    return untilSettledOrAborted(new Promise<void>((resolve) => (this.ringing = resolve)), signal);
  }

  ring(): void {
    this.ringing();
    this.ringing = () => undefined;
  }
}
