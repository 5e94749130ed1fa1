import { Context, Hono } from 'hono';
import * as v from 'valibot';
import {
  ASSIGNMENT_PATTERN,
  CLAIM_NAME_PATH,
  ConfigurationOutcome,
  HOSTNAME_PATTERN,
  MAX_STATUS_MESSAGE_LENGTH,
  RESET_ORDER,
  VmAssignmentResponse,
  VmHealthAnswer,
} from '../contract/wire';
import { Logger, errorMessage } from '../core/log';
import { check, exactObject } from '../core/validate';
import { afterAnswer } from '../http/after-answer';
import { readJsonObject } from '../http/json-body';
import { capBody } from '../http/limits';
import { recordHealth } from '../store/health';
import { claimSpareName } from '../store/replacement';
import { ResetOutcome, recordReset } from '../store/reset';
import { claimSetupRerun } from '../store/setup-rerun';
import { Sql } from '../store/sql';
import { recordVmLogs } from '../store/vm-logs';
import { recordOutcome, recordPoll } from '../store/vms';
import { parseHealthReport } from './health-report';
import { HoldRegistry } from './holds';
import { IdentityResult, VmIdentityVerifier } from './identity';
import { addLablinkClientRoutes } from './lablink-client-routes';
import { LOG_BATCH_FIELDS } from './log-batch';
import { SparesGroup } from './spares';

export interface AllocatorAppOptions {
  sql: Sql;
  holds: HoldRegistry;
  identity: VmIdentityVerifier;
  /** How long a `/vm_startup` request is held before a `204`. */
  holdSeconds: number;
  /** How long after a poll a VM that has not polled again still counts as alive. */
  aliveGraceSeconds: number;
  isListening: () => boolean;
  /** False until the first LISTEN: a task that never reached its database is not healthy. */
  isReady: () => boolean;
  /** Told of each assignment once its answer has been sent. */
  delivered: (hostname: string, assignmentId: string) => void;
  /** Tags a spare with the name it claimed, for the EC2 console; none in local mode. */
  spares?: SparesGroup;
  log: Logger;
}

const MAX_AGENT_BODY_BYTES = 4 * 1024;
/** A full batch of log lines fits even when every character takes three bytes of UTF-8. */
const MAX_LOG_BODY_BYTES = 1024 * 1024;
const OUTCOMES: readonly ConfigurationOutcome[] = ['configured', 'error'];
const RESET_OUTCOMES: readonly ResetOutcome[] = ['done', 'failed'];

const HOSTNAME_MESSAGE = 'Send "hostname": letters, digits, dots and dashes, at most 63 characters.';
const ASSIGNMENT_MESSAGE = 'Send the "assignment" id received from /vm_startup.';
const MESSAGE_MESSAGE = `"message" must be a string of at most ${MAX_STATUS_MESSAGE_LENGTH} characters.`;
const statusMessage = v.optional(v.pipe(v.string(MESSAGE_MESSAGE), v.maxLength(MAX_STATUS_MESSAGE_LENGTH, MESSAGE_MESSAGE)));
/** What every agent body holds; `identity` is judged by the identity verifier. */
const AGENT_FIELDS = {
  hostname: v.pipe(v.string(HOSTNAME_MESSAGE), v.regex(HOSTNAME_PATTERN, HOSTNAME_MESSAGE)),
  identity: v.optional(v.unknown()),
};

const STARTUP_FIELDS = { reportsOutcome: v.optional(v.boolean('"reportsOutcome" must be true or false.')) };
const STATUS_FIELDS = {
  assignment: v.pipe(v.string(ASSIGNMENT_MESSAGE), v.regex(ASSIGNMENT_PATTERN, ASSIGNMENT_MESSAGE)),
  outcome: v.picklist(OUTCOMES, 'Send "outcome": "configured" or "error".'),
  message: statusMessage,
};
const RESET_FIELDS = { outcome: v.picklist(RESET_OUTCOMES, 'Send "outcome": "done" or "failed".'), message: statusMessage };
/** Allowed here; their values are checked by parseHealthReport, after the hostname. */
const HEALTH_FIELDS = { heartbeat: v.optional(v.unknown()), gpu: v.optional(v.unknown()), inUse: v.optional(v.unknown()) };

type AgentFields<E extends v.ObjectEntries> = v.InferOutput<v.ObjectSchema<E, undefined>> & { hostname: string; identity?: unknown };
type AgentBody<E extends v.ObjectEntries> = { ok: true; body: AgentFields<E>; hostname: string } | { ok: false; response: Response };

/** The front of every agent route: a JSON object with a valid hostname, an optional identity and only the route's `fields`, each valid. */
async function readAgentBody<E extends v.ObjectEntries>(c: Context, fields: E): Promise<AgentBody<E>> {
  const parsed = await readJsonObject(c);
  if (!parsed.ok) return { ok: false, response: c.json({ error: parsed.message }, parsed.status) };
  const checked = check(exactObject({ ...AGENT_FIELDS, ...fields }), parsed.body);
  if (!checked.ok) return { ok: false, response: c.json({ error: checked.message }, 400) };
  // TypeScript cannot resolve valibot's output type over a generic spread; the schema above guarantees it.
  const body = checked.value as AgentFields<E>;
  return { ok: true, body, hostname: body.hostname };
}

type Identified = Extract<IdentityResult, { ok: true }>;

/** The VMs' side: long-polls for assignments and resets, reports of how start-host and resets ended, health reports and log lines. */
export function createAllocatorApp(options: AllocatorAppOptions): Hono {
  const { sql, holds, identity, log } = options;
  const app = new Hono();

  /**
   * An agent route: its body capped, read and checked (`fields`, then `precheck` if any), the VM
   * identified, and only then `handle`; each refusal answered here, with the same words everywhere.
   */
  function agentRoute<E extends v.ObjectEntries, P = undefined>(
    route: string,
    shape: { fields: E; maxBytes?: number; precheck?: (body: AgentFields<E>) => { ok: true; value: P } | { ok: false; message: string } },
    handle: (c: Context, body: AgentFields<E>, who: Identified, checked: P) => Promise<Response> | Response,
  ): void {
    app.use(route, capBody(shape.maxBytes ?? MAX_AGENT_BODY_BYTES));
    app.post(route, async (c) => {
      const request = await readAgentBody(c, shape.fields);
      if (!request.ok) return request.response;
      const pre = shape.precheck ? shape.precheck(request.body) : { ok: true as const, value: undefined as P };
      if (!pre.ok) return c.json({ error: pre.message }, 400);
      const who = await identity.identify({
        authorization: c.req.header('authorization'),
        hostname: request.hostname,
        identity: request.body.identity,
      });
      if (!who.ok) return c.json({ error: who.message }, who.status);
      return handle(c, request.body, who, pre.value);
    });
  }

  agentRoute('/vm_startup', { fields: STARTUP_FIELDS }, async (c, { reportsOutcome }, who) => {
    // LabLink's own client sends only its hostname: it never reports how start-host ended.
    const poll = await recordPoll(
      sql,
      who.hostname,
      options.holdSeconds + options.aliveGraceSeconds,
      who.instanceId ?? null,
      reportsOutcome ?? false,
    );
    if (poll.registered) log.info('vm.registered', { hostname: who.hostname });
    const delivery = await holds.hold(who.hostname, options.holdSeconds * 1000, c.req.raw.signal);
    if (!delivery) return c.body(null, 204);
    // Not a 200: LabLink's CRD-era client stops polling for good on any 200 that is no assignment.
    if (delivery.kind === 'reset') return c.json(RESET_ORDER, 202);
    // The mark and the log line wait for the answer: the VM never waits for them.
    afterAnswer(c, () => {
      options.delivered(who.hostname, delivery.assignmentId);
      log.info('vm.delivered', { hostname: who.hostname, email: delivery.email });
    });
    const response: VmAssignmentResponse = {
      status: 'success',
      pin: delivery.pin,
      command: delivery.command,
      assignment: delivery.assignmentId,
    };
    return c.json(response);
  });

  agentRoute('/vm_status', { fields: STATUS_FIELDS }, async (c, { assignment, outcome, message }, who) => {
    const recorded = await recordOutcome(sql, {
      hostname: who.hostname,
      assignmentId: assignment,
      outcome,
      error: outcome === 'error' ? (message ?? 'start-host failed') : null,
    });
    if (!recorded) return c.json({ error: 'This VM has no such assignment (it may have been released).' }, 409);
    if (recorded.state === 'configured') log.info('vm.configured', { hostname: who.hostname, email: recorded.email });
    else log.warn('vm.configuration_failed', { hostname: who.hostname, email: recorded.email, reason: message });
    return c.json({ state: recorded.state });
  });

  agentRoute('/vm_reset', { fields: RESET_FIELDS }, async (c, { outcome, message }, who) => {
    const recorded = await recordReset(sql, who.hostname, outcome, message ?? null);
    if (!recorded) return c.json({ error: 'This VM is not being reset.' }, 409);
    if (outcome === 'failed') log.error('vm.reset_failed', { hostname: who.hostname, reason: recorded.failure });
    else if (recorded.failed) log.warn('vm.reset_done_still_failed', { hostname: who.hostname, reason: recorded.failure });
    else log.info('vm.reset_done', { hostname: who.hostname });
    return c.json({ state: 'waiting', failed: recorded.failed });
  });

  const healthCheck = (body: AgentFields<typeof HEALTH_FIELDS>) => {
    const parsed = parseHealthReport(body);
    return parsed.ok ? { ok: true as const, value: parsed.report } : parsed;
  };
  agentRoute('/vm_health', { fields: HEALTH_FIELDS, precheck: healthCheck }, async (c, _body, who, report) => {
    if (!(await recordHealth(sql, who.hostname, report)))
      return c.json({ error: 'This VM has not registered yet; poll /vm_startup first.' }, 409);
    if (report.gpu?.status === 'failed') log.warn('vm.gpu_failed', { hostname: who.hostname, reason: report.gpu.detail });
    const answer: VmHealthAnswer = { ok: true };
    if (await claimSetupRerun(sql, who.hostname)) {
      answer.rerunSetup = true;
      log.info('vm.setup_rerun_sent', { hostname: who.hostname });
    }
    return c.json(answer);
  });

  agentRoute('/vm_logs', { fields: LOG_BATCH_FIELDS, maxBytes: MAX_LOG_BODY_BYTES }, async (c, { step, lines, setupFailure }, who) => {
    const { registered } = await recordVmLogs(sql, who.hostname, { step, lines, setupFailure }, who.instanceId ?? null);
    if (registered) log.info('vm.registered', { hostname: who.hostname, by: 'log batch' });
    if (setupFailure) log.warn('vm.setup_failed', { hostname: who.hostname, reason: setupFailure });
    return c.json({ accepted: lines.length });
  });

  app.use(CLAIM_NAME_PATH, capBody(MAX_AGENT_BODY_BYTES));
  app.post(CLAIM_NAME_PATH, async (c) => {
    const parsed = await readJsonObject(c);
    if (!parsed.ok) return c.json({ error: parsed.message }, parsed.status);
    const checked = check(exactObject({ identity: v.optional(v.unknown()) }), parsed.body);
    if (!checked.ok) return c.json({ error: checked.message }, 400);
    if (!identity.identifySpare) return c.json({ error: 'Spares exist only with EC2 identity; this allocator checks fleet tokens.' }, 403);
    const who = await identity.identifySpare(checked.value.identity);
    if (!who.ok) return c.json({ error: who.message }, who.status);
    const hostname = await claimSpareName(sql, who.instanceId);
    if (!hostname) return c.json({ error: 'No VM is waiting for a spare.' }, 409);
    log.info('vm.spare_named', { hostname, instanceId: who.instanceId });
    await options.spares
      ?.name(who.instanceId, hostname)
      .catch((error: unknown) => log.warn('vm.spare_tag_failed', { hostname, reason: errorMessage(error) }));
    return c.json({ hostname });
  });

  addLablinkClientRoutes(app, { sql, identity });

  app.get('/api/health', (c) => {
    // After the first LISTEN a lost connection is reconnected, and the task stays healthy meanwhile.
    const ready = options.isReady();
    return c.json({ status: ready ? 'ok' : 'starting', listening: options.isListening(), heldPolls: holds.size }, ready ? 200 : 503);
  });

  return app;
}
