import { Context, Hono, MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { html } from 'hono/html';
import * as v from 'valibot';
import { InvalidRequest, requestVm, validateVmRequest } from '../core/assignment';
import { AddressLimit } from '../core/client-limits';
import { IdleReleasePolicy, idleDeadlines } from '../core/idle-release';
import { idleNotice } from './idle-notices';
import { addDoneRoutes } from './done-routes';
import { expiryNotice } from './expiry-notice';
import { Logger } from '../core/log';
import { Sql } from '../core/sql';
import { MAX_EMAIL_LENGTH } from '../core/email';
import { fleetCapacity, findAssignment } from '../core/vms';
import { countWarmingVms } from '../core/fleet-power';
import { ASSIGNMENT_PATTERN } from '../core/wire';
import { secretsEqual } from '../core/secrets';
import { capBody } from '../http/limits';
import { check } from '../http/validate';
import { FIELD_ORDER, FieldErrors, formPage, freeCountText } from './pages';
import { readRequestForm } from './request-form';
import { HELD_ELSEWHERE, addressLimitedMessage, browserHoldsMessage } from './client-limit-messages';
import { progressMessage, setupIsSlow, vmPage } from './vm-page';

const MAX_FORM_BODY_BYTES = 16 * 1024;
const NO_VM_FREE = 'No VM is free right now. Please ask your instructor; your request was not stored.';
/** The warm pool holds stopped VMs: one is starting for the next participant (a stopped VM runs again in about 2 minutes). */
const VM_STARTING = 'All running VMs are taken, and more are starting now. Submit the form again in 2 minutes (your request was not stored; the command stays valid for a few minutes).';
const UNKNOWN_ASSIGNMENT = 'There is no VM request with this link. Request a VM from the form.';
const ASSIGNMENT_ID = v.pipe(v.string(), v.regex(ASSIGNMENT_PATTERN, 'That is not an assignment id.'));
/** How the VM page was reached after a request; any other `?outcome=` is ignored, as if none were given. */
const PAGE_OUTCOME = v.fallback(v.optional(v.picklist(['existing', 'retried', 'done'])), undefined);
/** Proves "this browser submitted the last command": needed to retry a failed setup with a new one. */
export const RETRY_COOKIE = 'lablink_retry';

/** Names no VM: email alone opens nothing. */
const RETRY_REFUSED = 'This email already has a VM whose setup failed. Submit the new command from the browser where you first asked for it, or ask your instructor.';

function wantsJson(c: Context): boolean {
  return /application\/json/i.test(c.req.header('accept') ?? '');
}

/** The workshop's access code, when one is set: the check happens before anything is stored. */
function accessCodeProblem(required: string | undefined, given: string | undefined): string | undefined {
  if (required === undefined) return undefined;
  if (given === undefined || given.trim() === '') return 'Enter the access code your instructor gave you.';
  if (!secretsEqual(given.trim(), required)) return 'That access code is not right. Check it with your instructor.';
  return undefined;
}

export interface FormAppOptions {
  sql: Sql;
  log: Logger;
  /** When set, requests for a VM must carry this code (field `access_code`). */
  accessCode?: string;
  /** Throttles requests for a VM (local mode; API Gateway throttles in AWS). */
  requestLimiter?: MiddlewareHandler;
  /** New VMs per client address and window; unlimited when unset or when the address is unknown. */
  addressLimit?: AddressLimit;
  /** The client's address: the socket's locally, API Gateway's sourceIp in AWS. */
  clientAddress?: (c: Context) => string | undefined;
  /** When the workshop's VMs stop (ISO time): the VM page counts down to it. */
  expiresAt?: string;
  /** Warns on the VM page before a VM held by nobody is released. */
  idleRelease?: IdleReleasePolicy;
}

/** The participants' side: the form, the request, their VM's page, the free count. Served by Lambda in AWS. */
export function createFormApp(options: FormAppOptions): Hono {
  const { sql, log } = options;
  const askAccessCode = options.accessCode !== undefined;
  const app = new Hono();

  // `?email=` comes from a VM page's "Get a new command": the participant keeps their address.
  app.get('/', async (c) => c.html(formPage({ capacity: await fleetCapacity(sql), askAccessCode, values: { email: c.req.query('email')?.slice(0, MAX_EMAIL_LENGTH) } })));

  app.get('/api/unassigned_vms_count', async (c) => {
    const capacity = await fleetCapacity(sql);
    return c.json({ count: capacity.free, onTheWay: capacity.onTheWay, readyInSeconds: capacity.readyInSeconds, message: freeCountText(capacity) });
  });

  app.use('/api/request_vm', capBody(MAX_FORM_BODY_BYTES));
  if (options.requestLimiter) app.use('/api/request_vm', options.requestLimiter);
  app.post('/api/request_vm', async (c) => {
    const json = wantsJson(c);
    const read = await readRequestForm(c);
    if (!read.ok) {
      if (json) return c.json({ error: read.message }, read.status);
      return c.html(formPage({ capacity: await fleetCapacity(sql), askAccessCode, errors: { form: read.message } }), read.status);
    }
    const { email, emailConfirmed, crdCommand, accessCode, retryToken } = read.form;
    const values = { email, crdCommand, accessCode };
    const input = { email, emailConfirmed, crdCommand, retryToken: retryToken ?? getCookie(c, RETRY_COOKIE) };
    // Every problem at once: a wrong access code is reported with the fields' own mistakes.
    const refuse = async (status: 400 | 403, invalid: { errors: FieldErrors; emailSuggestion?: string }) => {
      // JSON clients get the first problem as `error` too, as before; a refused access code comes first.
      const field = status === 403 ? 'access_code' : (FIELD_ORDER.find((name) => invalid.errors[name]) as keyof FieldErrors);
      if (json) return c.json({ error: invalid.errors[field], field, errors: invalid.errors, ...(invalid.emailSuggestion ? { emailSuggestion: invalid.emailSuggestion } : {}) }, status);
      return c.html(formPage({ capacity: await fleetCapacity(sql), askAccessCode, values, errors: invalid.errors, emailSuggestion: invalid.emailSuggestion }), status);
    };
    const accessProblem = accessCodeProblem(options.accessCode, accessCode);
    if (accessProblem) {
      const valid = validateVmRequest(input);
      const invalid: InvalidRequest = valid.ok ? { errors: {} } : valid;
      return refuse(403, { ...invalid, errors: { access_code: accessProblem, ...invalid.errors } });
    }
    const result = await requestVm(sql, input, { address: options.clientAddress?.(c), addressLimit: options.addressLimit });
    switch (result.kind) {
      case 'held_elsewhere':
        log.warn('vm.email_elsewhere', { email });
        if (json) return c.json({ error: HELD_ELSEWHERE }, 409);
        return c.html(formPage({ capacity: await fleetCapacity(sql), askAccessCode, values, errors: { form: HELD_ELSEWHERE } }), 409);
      case 'browser_holds':
        log.warn('vm.browser_holds', { hostname: result.hostname, email });
        if (json) return c.json({ error: browserHoldsMessage(result.hostname), status: `/api/assignment/${result.assignmentId}` }, 409);
        return c.html(formPage({ capacity: await fleetCapacity(sql), askAccessCode, values, errors: { form: browserHoldsMessage(result.hostname) } }), 409);
      case 'address_limited':
        log.warn('vm.address_limited', { retryAfterSeconds: result.retryAfterSeconds });
        c.header('retry-after', String(result.retryAfterSeconds));
        if (json) return c.json({ error: addressLimitedMessage(result.retryAfterSeconds) }, 429);
        return c.html(formPage({ capacity: await fleetCapacity(sql), askAccessCode, values, errors: { form: addressLimitedMessage(result.retryAfterSeconds) } }), 429);
      case 'retry_refused':
        log.warn('vm.email_elsewhere', { email, hostname: result.hostname });
        if (json) return c.json({ error: RETRY_REFUSED }, 409);
        return c.html(formPage({ capacity: await fleetCapacity(sql), askAccessCode, values, errors: { form: RETRY_REFUSED } }), 409);
      case 'invalid':
        return refuse(400, result);
      case 'no_vm_free': {
        const starting = (await countWarmingVms(sql)) > 0;
        log.warn('vm.none_free', { starting });
        const message = starting ? VM_STARTING : NO_VM_FREE;
        if (json) return c.json({ error: message }, 503, starting ? { 'retry-after': '120' } : {});
        return c.html(formPage({ capacity: await fleetCapacity(sql), askAccessCode, values, errors: { form: message } }), 503);
      }
      case 'assigned':
        if (result.outcome !== 'existing') log.info(result.outcome === 'retried' ? 'vm.retried' : 'vm.assigned', { hostname: result.hostname, email: result.email });
        if (result.retryToken) {
          setCookie(c, RETRY_COOKIE, result.retryToken, {
            path: '/',
            httpOnly: true,
            sameSite: 'Lax',
            secure: new URL(c.req.url).protocol === 'https:',
            maxAge: 7 * 24 * 3600,
          });
        }
        if (json) {
          return c.json({
            hostname: result.hostname,
            pin: result.pin,
            status: `/api/assignment/${result.assignmentId}`,
            ...(result.retryToken ? { retryToken: result.retryToken } : {}),
          });
        }
        // Post/Redirect/Get: reloading the VM's page never submits the form again.
        return c.redirect(`/vm/${result.assignmentId}${result.outcome === 'assigned' ? '' : `?outcome=${result.outcome}`}`, 303);
    }
  });

  addDoneRoutes(app, { sql, retryCookie: RETRY_COOKIE });

  app.get('/vm/:assignment', async (c) => {
    const assignmentId = c.req.param('assignment');
    const view = v.is(ASSIGNMENT_ID, assignmentId) ? await findAssignment(sql, assignmentId) : undefined;
    if (!view) return c.html(formPage({ capacity: await fleetCapacity(sql), askAccessCode, errors: { form: UNKNOWN_ASSIGNMENT } }), 404);
    // The participant was moved to another VM: their old link leads to the new one.
    if (view.assignmentId !== assignmentId) return c.redirect(`/vm/${view.assignmentId}`, 303);
    const idle = options.idleRelease && (await idleDeadlines(sql, options.idleRelease, assignmentId))[0];
    return c.html(vmPage({ assignmentId, view, outcome: v.parse(PAGE_OUTCOME, c.req.query('outcome')), notices: html`${options.expiresAt && view.progress !== 'released' ? expiryNotice(options.expiresAt) : ''}${options.idleRelease ? idleNotice(idle, options.idleRelease) : ''}` }));
  });

  app.get('/api/assignment/:assignment', async (c) => {
    const assignmentId = check(ASSIGNMENT_ID, c.req.param('assignment'));
    if (!assignmentId.ok) return c.json({ error: assignmentId.message }, 400);
    const view = await findAssignment(sql, assignmentId.value);
    if (!view) return c.json({ error: UNKNOWN_ASSIGNMENT }, 404);
    return c.json({
      hostname: view.hostname,
      assignment: view.assignmentId,
      progress: view.progress,
      message: progressMessage(view),
      error: view.error,
      movedFrom: view.movedFrom,
      elapsedSeconds: view.elapsedSeconds,
      slow: setupIsSlow(view),
    });
  });

  return app;
}
