import { GPU_STATUSES, GpuStatus, HealthReport } from '../core/health';

type Parsed = { ok: true; report: HealthReport } | { ok: false; message: string };

const isCount = (value: unknown, max: number) => typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= max;

/** Validates the report parts of a `/vm_health` body; anything malformed is refused whole. */
export function parseHealthReport(body: Record<string, unknown>): Parsed {
  const report: HealthReport = {};
  if (body.heartbeat !== undefined) {
    const beat = body.heartbeat as Record<string, unknown> | null;
    if (
      typeof beat !== 'object' || beat === null ||
      typeof beat.bootId !== 'string' || !/^[\w-]{1,64}$/.test(beat.bootId) ||
      !isCount(beat.uptimeSeconds, 10 * 365 * 86_400) ||
      typeof beat.crdRunning !== 'boolean' ||
      !isCount(beat.diskFreeMb, 1e9)
    ) {
      return { ok: false, message: '"heartbeat" needs bootId, uptimeSeconds, crdRunning (true/false) and diskFreeMb.' };
    }
    report.heartbeat = { bootId: beat.bootId, uptimeSeconds: beat.uptimeSeconds as number, crdRunning: beat.crdRunning, diskFreeMb: beat.diskFreeMb as number };
  }
  if (body.gpu !== undefined) {
    const gpu = body.gpu as Record<string, unknown> | null;
    if (typeof gpu !== 'object' || gpu === null || !GPU_STATUSES.includes(gpu.status as GpuStatus) || (gpu.detail !== undefined && (typeof gpu.detail !== 'string' || gpu.detail.length > 200))) {
      return { ok: false, message: '"gpu" needs status "ok", "failed" or "n/a", and an optional short detail.' };
    }
    report.gpu = { status: gpu.status as GpuStatus, ...(gpu.detail !== undefined ? { detail: gpu.detail as string } : {}) };
  }
  if (body.inUse !== undefined) {
    if (typeof body.inUse !== 'boolean') return { ok: false, message: '"inUse" must be true or false.' };
    report.inUse = body.inUse;
  }
  if (Object.keys(report).length === 0) return { ok: false, message: 'Send at least one of "heartbeat", "gpu" or "inUse".' };
  return { ok: true, report };
}
