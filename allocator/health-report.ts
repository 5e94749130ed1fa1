import * as v from 'valibot';
import { GPU_STATUSES, HealthReport } from '../contract/health-report';
import { check } from '../core/validate';

const count = (max: number, message: string) =>
  v.pipe(v.number(message), v.finite(message), v.minValue(0, message), v.maxValue(max, message));

const HEARTBEAT_MESSAGE = '"heartbeat" needs bootId, uptimeSeconds, crdRunning (true/false) and diskFreeMb.';
const GPU_MESSAGE = '"gpu" needs status "ok", "failed" or "n/a", and an optional short detail.';

/** The report parts of a `/vm_health` body (other fields are checked by the route); anything malformed is refused whole. */
const HEALTH_REPORT = v.pipe(
  v.object({
    heartbeat: v.optional(
      v.object(
        {
          bootId: v.pipe(v.string(HEARTBEAT_MESSAGE), v.regex(/^[\w-]{1,64}$/, HEARTBEAT_MESSAGE)),
          uptimeSeconds: count(10 * 365 * 86_400, HEARTBEAT_MESSAGE),
          crdRunning: v.boolean(HEARTBEAT_MESSAGE),
          diskFreeMb: count(1e9, HEARTBEAT_MESSAGE),
        },
        HEARTBEAT_MESSAGE,
      ),
    ),
    gpu: v.optional(
      v.object(
        { status: v.picklist(GPU_STATUSES, GPU_MESSAGE), detail: v.optional(v.pipe(v.string(GPU_MESSAGE), v.maxLength(200, GPU_MESSAGE))) },
        GPU_MESSAGE,
      ),
    ),
    inUse: v.optional(v.boolean('"inUse" must be true or false.')),
  }),
  v.check((report) => Object.values(report).some((part) => part !== undefined), 'Send at least one of "heartbeat", "gpu" or "inUse".'),
);

export function parseHealthReport(body: Record<string, unknown>): { ok: true; report: HealthReport } | { ok: false; message: string } {
  const checked = check(HEALTH_REPORT, body);
  if (!checked.ok) return checked;
  const { heartbeat, gpu, inUse } = checked.value;
  return { ok: true, report: { ...(heartbeat ? { heartbeat } : {}), ...(gpu ? { gpu } : {}), ...(inUse !== undefined ? { inUse } : {}) } };
}
