/** Seconds the load balancer keeps an idle connection beyond the longest hold. */
export const IDLE_TIMEOUT_MARGIN_SECONDS = 30;

/** Node's fetch waits at most 300 s for response headers: holds stay well below that. */
export const MAX_HOLD_SECONDS = 240;
