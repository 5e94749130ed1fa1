import { Context, Hono } from 'hono';
import { GpuStatus, HealthReport, recordHealth } from '../core/health';
import type { LogLevel } from '../core/log';
import { Sql } from '../core/sql';
import { recordVmLogs } from '../core/vm-logs';
import { HOSTNAME_PATTERN, LOG_CONTROL_CHARACTERS, MAX_LOG_LINE_LENGTH, MAX_LOG_LINES_PER_BATCH, VmLogLine } from '../core/wire';
import { readJsonObject } from '../http/json-body';
import { capBody } from '../http/limits';
import { VmIdentityVerifier } from './identity';

/**
 * The health and log endpoints LabLink's own client VMs call (its Python client service and
 * its boot scripts), mapped onto this allocator's one per-VM health and log channel, so an
 * instructor running those VMs with `allowFleetToken` sees them on the dashboard. Field
 * names and answers follow LabLink's allocator; identity is the same as for `/vm_startup`.
 */
export interface LablinkClientRoutesOptions {
  sql: Sql;
  identity: VmIdentityVerifier;
}

const MAX_BODY_BYTES = 4 * 1024;
const MAX_LOG_BODY_BYTES = 1024 * 1024;
const CLIENT_STATUSES = ['initializing', 'running', 'error', 'unknown'] as const;
const GPU_STATUS: Record<string, GpuStatus> = { Healthy: 'ok', Unhealthy: 'failed', 'N/A': 'n/a' };
const METRIC_FIELDS = [
  ['cloud_init_duration_seconds', 'boot script'],
  ['container_startup_duration_seconds', 'client container start'],
] as const;

type Identified = { ok: true; hostname: string; body: Record<string, unknown> } | { ok: false; response: Response };

/** Reads the JSON body, takes the VM's name from `field` (or the path), and checks the VM's proof of identity. */
async function identifiedBody(c: Context, identity: VmIdentityVerifier, field: string, fromPath?: string): Promise<Identified> {
  const parsed = await readJsonObject(c);
  if (!parsed.ok) return { ok: false, response: c.json({ error: parsed.message }, parsed.status) };
  const hostname = fromPath ?? parsed.body[field];
  if (typeof hostname !== 'string' || !HOSTNAME_PATTERN.test(hostname)) {
    return { ok: false, response: c.json({ error: `Send "${field}": the VM's name (letters, digits, dots and dashes, at most 63 characters).` }, 400) };
  }
  const who = await identity.identify({ authorization: c.req.header('authorization'), hostname });
  if (!who.ok) return { ok: false, response: c.json({ error: who.message }, who.status) };
  return { ok: true, hostname: who.hostname, body: parsed.body };
}

/** One line of plain text: control characters shown as `\xNN` so a line cannot forge another or drive a terminal. */
export function plainLine(text: string): string {
  const visible = text.replace(LOG_CONTROL_CHARACTERS, (character) => `\\x${character.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return visible.length > MAX_LOG_LINE_LENGTH ? `${visible.slice(0, MAX_LOG_LINE_LENGTH - 1)}…` : visible;
}

/** LabLink's clients send bare lines: their level is read from the words they use. */
function levelOf(text: string): LogLevel {
  if (/\b(error|failed|fatal|traceback)\b/i.test(text)) return 'error';
  if (/\bwarn(ing)?\b/i.test(text)) return 'warn';
  return 'info';
}

const line = (text: string, level: LogLevel = levelOf(text)): VmLogLine => ({ at: new Date().toISOString(), level, source: 'boot', text: plainLine(text) });

export function addLablinkClientRoutes(app: Hono, options: LablinkClientRoutesOptions): void {
  const { sql, identity } = options;

  const health = async (c: Context, hostname: string, report: HealthReport, message: string) => {
    if (!(await recordHealth(sql, hostname, report))) return c.json({ error: 'Unknown hostname.' }, 404);
    return c.json(message === '' ? { ok: true } : { message });
  };

  for (const path of ['/api/vm-status', '/api/heartbeat', '/api/gpu_health', '/api/update_inuse_status', '/api/vm-metrics/*']) app.use(path, capBody(MAX_BODY_BYTES));
  app.use('/api/vm-logs', capBody(MAX_LOG_BODY_BYTES));

  app.post('/api/vm-status', async (c) => {
    const request = await identifiedBody(c, identity, 'hostname');
    if (!request.ok) return request.response;
    const status = request.body.status;
    if (!CLIENT_STATUSES.includes(status as (typeof CLIENT_STATUSES)[number])) {
      return c.json({ error: `Send "status": one of ${CLIENT_STATUSES.join(', ')}.` }, 400);
    }
    const lines = status === 'error' ? [line('The VM reported status "error" (see its boot log).', 'error')] : [];
    await recordVmLogs(sql, request.hostname, { step: status as string, lines });
    return c.json({ message: 'VM status updated successfully.' });
  });

  app.post('/api/heartbeat', async (c) => {
    const request = await identifiedBody(c, identity, 'vm_id');
    if (!request.ok) return request.response;
    const { boot_id: bootId, crd_active: crdActive } = request.body;
    if (bootId !== undefined && bootId !== null && (typeof bootId !== 'string' || !/^[\w-]{1,64}$/.test(bootId))) {
      return c.json({ error: '"boot_id" must be the kernel\'s boot id (letters, digits, dashes) or null.' }, 400);
    }
    if (crdActive !== undefined && typeof crdActive !== 'boolean') return c.json({ error: '"crd_active" must be true or false.' }, 400);
    return health(c, request.hostname, { heartbeat: { bootId: (bootId as string | null | undefined) ?? undefined, crdRunning: crdActive } }, '');
  });

  app.post('/api/gpu_health', async (c) => {
    const request = await identifiedBody(c, identity, 'hostname');
    if (!request.ok) return request.response;
    const status = GPU_STATUS[request.body.gpu_status as string];
    if (!status) return c.json({ error: 'Send "gpu_status": "Healthy", "Unhealthy" or "N/A".' }, 400);
    return health(c, request.hostname, { gpu: { status } }, 'GPU health status updated successfully.');
  });

  app.post('/api/update_inuse_status', async (c) => {
    const request = await identifiedBody(c, identity, 'hostname');
    if (!request.ok) return request.response;
    if (typeof request.body.status !== 'boolean') return c.json({ error: 'Send "status": true while the workshop software runs, false otherwise.' }, 400);
    return health(c, request.hostname, { inUse: request.body.status }, 'In-use status updated successfully.');
  });

  app.post('/api/vm-metrics/:hostname', async (c) => {
    const request = await identifiedBody(c, identity, 'hostname', c.req.param('hostname'));
    if (!request.ok) return request.response;
    const lines: VmLogLine[] = [];
    for (const [field, what] of METRIC_FIELDS) {
      const seconds = request.body[field];
      if (seconds === undefined) continue;
      if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return c.json({ error: `"${field}" must be a number of seconds.` }, 400);
      lines.push(line(`The ${what} took ${Math.round(seconds)} s.`, 'info'));
    }
    if (lines.length === 0) return c.json({ error: `Send ${METRIC_FIELDS.map(([field]) => `"${field}"`).join(' or ')}.` }, 400);
    await recordVmLogs(sql, request.hostname, { lines });
    return c.json({ message: 'VM metrics posted successfully.' });
  });

  app.post('/api/vm-logs', async (c) => {
    const request = await identifiedBody(c, identity, 'log_stream');
    if (!request.ok) return request.response;
    const { messages } = request.body;
    if (!Array.isArray(messages) || messages.some((message) => typeof message !== 'string')) {
      return c.json({ error: 'Send "messages": a list of log lines (strings).' }, 400);
    }
    if (messages.length > MAX_LOG_LINES_PER_BATCH) return c.json({ error: `Send at most ${MAX_LOG_LINES_PER_BATCH} lines per request; this one has ${messages.length}.` }, 400);
    await recordVmLogs(sql, request.hostname, { lines: (messages as string[]).map((text) => line(text)) });
    return c.json({ message: 'VM logs posted successfully.' });
  });
}
