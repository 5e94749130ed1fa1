import type { VmSummary } from '../../store/vms';
import { randomBytes } from 'node:crypto';

/** A unique code of the shape Google issues, so the stand-in never sees one twice. */
export function fakeCode(): string {
  return `4/0Aan${randomBytes(30).toString('base64url')}`;
}

export function crdCommand(code = fakeCode()): string {
  return `DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="${code}" --redirect-url="https://remotedesktop.google.com/_/oauthredirect" --name=$(hostname)`;
}

export const TEST_FLEET_TOKEN = 'test-fleet-token-0123456789';
export const TEST_ADMIN_SECRET = 'test-admin-secret-0123456789';

/** Polls `check` until it returns a value other than undefined, null or false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A free, healthy VM as the admin list shows it; `changes` makes it anything else. */
export function vmSummary(hostname: string, changes: Partial<VmSummary> = {}): VmSummary {
  return {
    hostname,
    status: 'free',
    state: 'waiting',
    email: null,
    error: null,
    registered_at: '2026-12-04T20:00:00.000Z',
    last_seen: '2026-12-04T20:10:00.000Z',
    assigned_at: null,
    delivered_at: null,
    configured_at: null,
    polling: true,
    instance_id: null,
    boot_id: null,
    uptime_seconds: 600,
    crd_running: null,
    disk_free_mb: 9000,
    gpu_status: null,
    gpu_detail: null,
    in_use: false,
    health_reported_at: '2026-12-04T20:10:00.000Z',
    unhealthy_since: null,
    reboot_count: 0,
    last_reboot_at: null,
    failed_at: null,
    failure: null,
    stale: false,
    step: 'waiting',
    step_at: null,
    reset_requested_at: null,
    log_errors: 0,
    setup_rerun_requested_at: null,
    moved_from: null,
    warm_pool: null,
    replacement_requested_at: null,
    replacement_count: 0,
    spare: false,
    replaced_instance_id: null,
    ...changes,
  };
}
