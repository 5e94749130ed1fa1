import { Context, Hono } from 'hono';
import * as v from 'valibot';
import { GpuStatus, HealthReport } from '../contract/health-report';
import { HOSTNAME_PATTERN, LogLevel, MAX_LOG_LINE_LENGTH, MAX_LOG_LINES_PER_BATCH, VmLogLine } from '../contract/wire';
import { visibleLine } from '../core/log';
import { check, fieldsObject } from '../core/validate';
import { readJsonObject } from '../http/json-body';
import { capBody } from '../http/limits';
import { recordHealth } from '../store/health';
import { Sql } from '../store/sql';
import { recordKnownVmLogs, recordVmLogs } from '../store/vm-logs';
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
const BOOT_ID_MESSAGE = '"boot_id" must be the kernel\'s boot id (letters, digits, dashes) or null.';
const seconds = (field: string) => {
  const message = `"${field}" must be a number of seconds.`;
  return v.optional(v.pipe(v.number(message), v.finite(message), v.minValue(0, message)));
};

// LabLink's clients may send fields of their own: those are ignored, not refused.
const VM_STATUS = fieldsObject({ status: v.picklist(CLIENT_STATUSES, `Send "status": one of ${CLIENT_STATUSES.join(', ')}.`) });
const HEARTBEAT = fieldsObject({
  boot_id: v.nullish(v.pipe(v.string(BOOT_ID_MESSAGE), v.regex(/^[\w-]{1,64}$/, BOOT_ID_MESSAGE))),
  crd_active: v.optional(v.boolean('"crd_active" must be true or false.')),
});
const GPU_HEALTH = fieldsObject({
  gpu_status: v.pipe(
    v.picklist(Object.keys(GPU_STATUS), 'Send "gpu_status": "Healthy", "Unhealthy" or "N/A".'),
    v.transform((status) => GPU_STATUS[status]),
  ),
});
const IN_USE = fieldsObject({ status: v.boolean('Send "status": true while the workshop software runs, false otherwise.') });
const METRICS = v.pipe(
  fieldsObject({
    cloud_init_duration_seconds: seconds('cloud_init_duration_seconds'),
    container_startup_duration_seconds: seconds('container_startup_duration_seconds'),
  }),
  v.check(
    (metrics) => METRIC_FIELDS.some(([field]) => metrics[field] !== undefined),
    `Send ${METRIC_FIELDS.map(([field]) => `"${field}"`).join(' or ')}.`,
  ),
);
const MESSAGES_MESSAGE = 'Send "messages": a list of log lines (strings).';
const VM_LOGS = fieldsObject({
  messages: v.pipe(
    v.array(v.string(MESSAGES_MESSAGE), MESSAGES_MESSAGE),
    v.maxLength(
      MAX_LOG_LINES_PER_BATCH,
      (issue) => `Send at most ${MAX_LOG_LINES_PER_BATCH} lines per request; this one has ${issue.input.length}.`,
    ),
  ),
});

type Identified<T> = { ok: true; hostname: string; fields: T } | { ok: false; response: Response };

/**
 * Reads the JSON body, takes the VM's name from `field` (or the path), checks the VM's proof
 * of identity, then the route's `fields` (in LabLink's order: who asks comes first).
 */
async function identifiedBody<S extends v.GenericSchema>(
  c: Context,
  identity: VmIdentityVerifier,
  field: string,
  fields: S,
  fromPath?: string,
): Promise<Identified<v.InferOutput<S>>> {
  const parsed = await readJsonObject(c);
  if (!parsed.ok) return { ok: false, response: c.json({ error: parsed.message }, parsed.status) };
  const hostnameMessage = `Send "${field}": the VM's name (letters, digits, dots and dashes, at most 63 characters).`;
  const hostname = check(v.pipe(v.string(hostnameMessage), v.regex(HOSTNAME_PATTERN, hostnameMessage)), fromPath ?? parsed.body[field]);
  if (!hostname.ok) return { ok: false, response: c.json({ error: hostname.message }, 400) };
  const who = await identity.identify({ authorization: c.req.header('authorization'), hostname: hostname.value });
  if (!who.ok) return { ok: false, response: c.json({ error: who.message }, who.status) };
  const checked = check(fields, parsed.body);
  if (!checked.ok) return { ok: false, response: c.json({ error: checked.message }, 400) };
  return { ok: true, hostname: who.hostname, fields: checked.value };
}

/** One line of plain text, escaped as the allocator's own logs are (control, separator and bidi characters). */
export function plainLine(text: string): string {
  const visible = visibleLine(text);
  return visible.length > MAX_LOG_LINE_LENGTH ? `${visible.slice(0, MAX_LOG_LINE_LENGTH - 1)}…` : visible;
}

/** LabLink's clients send bare lines: their level is read from the words they use. */
function levelOf(text: string): LogLevel {
  if (/\b(error|failed|fatal|traceback)\b/i.test(text)) return 'error';
  if (/\bwarn(ing)?\b/i.test(text)) return 'warn';
  return 'info';
}

const line = (text: string, level: LogLevel = levelOf(text)): VmLogLine => ({
  at: new Date().toISOString(),
  level,
  source: 'boot',
  text: plainLine(text),
});

export function addLablinkClientRoutes(app: Hono, options: LablinkClientRoutesOptions): void {
  const { sql, identity } = options;

  const UNKNOWN = { error: 'Unknown hostname.' };
  const health = async (c: Context, hostname: string, report: HealthReport, message: string) => {
    const recorded = await recordHealth(sql, hostname, report);
    if (!recorded) return c.json(UNKNOWN, 404);
    if (recorded.rejoined) {
      await recordVmLogs(sql, hostname, { lines: [line('A new boot after its release: the VM is back in the pool.', 'info')] });
    }
    return c.json(message === '' ? { ok: true } : { message });
  };

  for (const path of ['/api/vm-status', '/api/heartbeat', '/api/gpu_health', '/api/update_inuse_status', '/api/vm-metrics/*'])
    app.use(path, capBody(MAX_BODY_BYTES));
  app.use('/api/vm-logs', capBody(MAX_LOG_BODY_BYTES));

  app.post('/api/vm-status', async (c) => {
    const request = await identifiedBody(c, identity, 'hostname', VM_STATUS);
    if (!request.ok) return request.response;
    const { status } = request.fields;
    const lines = status === 'error' ? [line('The VM reported status "error" (see its boot log).', 'error')] : [];
    await recordVmLogs(sql, request.hostname, { step: status, lines });
    return c.json({ message: 'VM status updated successfully.' });
  });

  app.post('/api/heartbeat', async (c) => {
    const request = await identifiedBody(c, identity, 'vm_id', HEARTBEAT);
    if (!request.ok) return request.response;
    const { boot_id: bootId, crd_active: crdActive } = request.fields;
    return health(c, request.hostname, { heartbeat: { bootId: bootId ?? undefined, crdRunning: crdActive } }, '');
  });

  app.post('/api/gpu_health', async (c) => {
    const request = await identifiedBody(c, identity, 'hostname', GPU_HEALTH);
    if (!request.ok) return request.response;
    return health(c, request.hostname, { gpu: { status: request.fields.gpu_status } }, 'GPU health status updated successfully.');
  });

  app.post('/api/update_inuse_status', async (c) => {
    const request = await identifiedBody(c, identity, 'hostname', IN_USE);
    if (!request.ok) return request.response;
    return health(c, request.hostname, { inUse: request.fields.status }, 'In-use status updated successfully.');
  });

  app.post('/api/vm-metrics/:hostname', async (c) => {
    const request = await identifiedBody(c, identity, 'hostname', METRICS, c.req.param('hostname'));
    if (!request.ok) return request.response;
    const lines = METRIC_FIELDS.flatMap(([field, what]) => {
      const took = request.fields[field];
      return took === undefined ? [] : [line(`The ${what} took ${Math.round(took)} s.`, 'info')];
    });
    if (!(await recordKnownVmLogs(sql, request.hostname, lines))) return c.json(UNKNOWN, 404);
    return c.json({ message: 'VM metrics posted successfully.' });
  });

  app.post('/api/vm-logs', async (c) => {
    const request = await identifiedBody(c, identity, 'log_stream', VM_LOGS);
    if (!request.ok) return request.response;
    if (
      !(await recordKnownVmLogs(
        sql,
        request.hostname,
        request.fields.messages.map((text) => line(text)),
      ))
    )
      return c.json(UNKNOWN, 404);
    return c.json({ message: 'VM logs posted successfully.' });
  });
}
