/** Seconds the load balancer keeps an idle connection beyond the longest hold. */
export const IDLE_TIMEOUT_MARGIN_SECONDS = 30;

/** How long a VM's poll is held before "nothing yet", unless configured: below every idle timeout on the way. */
export const DEFAULT_HOLD_SECONDS = 40;

/** Node's fetch waits at most 300 s for response headers: holds stay well below that. */
export const MAX_HOLD_SECONDS = 240;
