export type GpuStatus = 'ok' | 'failed' | 'n/a';

export const GPU_STATUSES: readonly GpuStatus[] = ['ok', 'failed', 'n/a'];

/** What an agent reports; each part is optional, sent on its own schedule or when it changes. */
export interface HealthReport {
  /** The agent sends every field; LabLink's own client only some (see allocator/lablink-client-routes.ts). */
  heartbeat?: { bootId?: string; uptimeSeconds?: number; crdRunning?: boolean; diskFreeMb?: number };
  gpu?: { status: GpuStatus; detail?: string };
  inUse?: boolean;
}
