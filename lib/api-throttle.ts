import { CHANGING_POLL_SECONDS } from '../contract/page-polling';

/** A token bucket as API Gateway applies it: `rate` requests per second, up to `burst` at once. */
export interface Throttle {
  readonly rate: number;
  readonly burst: number;
}

export interface ApiThrottle {
  /** The stage's default, for every route. */
  readonly stage: Throttle;
  /** The tighter limit on `POST /api/request_vm`, the path that reaches for a VM. */
  readonly requestVm: Throttle;
}

/** The smallest workshop still gets the limits LabLink always had. */
const MIN_RATE = 50;
/** AWS's default account-level limits per Region, which no stage can exceed. */
const ACCOUNT_RATE = 10_000;
const ACCOUNT_BURST = 5_000;
/** Each page asks at most once per CHANGING_POLL_SECONDS; three times that leaves room for page loads, forms and the dashboard. */
const HEADROOM = 3;
/** A submission brings three requests at once: the POST, the VM page it redirects to, and that page's script. */
const REQUESTS_PER_SUBMISSION = 3;

/**
 * The form API's throttle for a fleet of `vmCount` VMs, or from an explicit `apiRateLimit`.
 *
 * - rate R = `apiRateLimit` when set, else max(50, ⌈3 × vmCount / CHANGING_POLL_SECONDS⌉)
 *   (= max(50, vmCount) with pages polling every 3 s): every participant's page polling at its
 *   fastest uses a third of it, all at once;
 * - stage burst = 3 × R: every participant submitting in the same second, each followed by the
 *   VM page and its script;
 * - `POST /api/request_vm`: ⌈R / 2⌉ per second, burst R (every participant at once).
 *
 * Rates stay within AWS's default account limits (10,000 per second, burst 5,000 per Region).
 */
export function apiThrottle(vmCount: number, apiRateLimit?: number): ApiThrottle {
  const rate = Math.min(ACCOUNT_RATE, apiRateLimit ?? Math.max(MIN_RATE, Math.ceil((HEADROOM * vmCount) / CHANGING_POLL_SECONDS)));
  return {
    stage: { rate, burst: Math.min(ACCOUNT_BURST, REQUESTS_PER_SUBMISSION * rate) },
    requestVm: { rate: Math.max(1, Math.ceil(rate / 2)), burst: Math.min(ACCOUNT_BURST, rate) },
  };
}
