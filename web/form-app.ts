import { Context, Hono, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { html } from 'hono/html';
import * as v from 'valibot';
import { ASSIGNMENT_PATTERN } from '../contract/wire';
import { MAX_EMAIL_LENGTH } from '../core/email';
import { IdleReleasePolicy } from '../core/idle-release';
import { Logger } from '../core/log';
import { secretsEqual } from '../core/secrets';
import { check } from '../core/validate';
import { InvalidRequest, validateVmRequest } from '../core/vm-request';
import { capBody } from '../http/limits';
import { findAssignment, requestVm } from '../store/assignment';
import { AddressLimit } from '../store/client-limits';
import { countWarmingVms } from '../store/fleet-power';
import { idleDeadlines } from '../store/idle-deadlines';
import { Sql } from '../store/sql';
import { fleetCapacity } from '../store/vms';
import { DEFAULT_LINE_POLICY, LinePolicy } from '../store/waiting-line';
import { BROWSER_IN_LINE, HELD_ELSEWHERE, IN_LINE_ELSEWHERE, addressLimitedMessage, browserHoldsMessage } from './client-limit-messages';
import { addDoneRoutes } from './done-routes';
import { expiryNotice } from './expiry-notice';
import { REFUSAL_STATUS, Refusal, RefusalCode, forgetRefusal, readRefusal, redirectToRefusal } from './form-refusal';
import { addHandoverRoutes } from './handover-routes';
import { idleNotice } from './idle-notices';
import { addLineRoutes } from './line-routes';
import { FIELD_ORDER, FieldErrors, FormErrors, formPage, freeCountText } from './pages';
import { readRequestForm } from './request-form';
import { RETRY_COOKIE, setRetryCookie } from './retry-cookie';
import { progressMessage, setupIsSlow, vmPage } from './vm-page';

const MAX_FORM_BODY_BYTES = 16 * 1024;
const NO_VM_FREE = 'No VM is free right now. Please ask your instructor; your request was not stored.';
/** The warm pool holds stopped VMs: one is starting for the next participant (a stopped VM runs again in about 2 minutes). */
const VM_STARTING =
  'All running VMs are taken, and more are starting now. Submit the form again in 2 minutes (your request was not stored; the command stays valid for a few minutes).';
const UNKNOWN_ASSIGNMENT = 'There is no VM request with this link. Request a VM from the form.';
const ASSIGNMENT_ID = v.pipe(v.string(), v.regex(ASSIGNMENT_PATTERN, 'That is not an assignment id.'));
/** How the VM page was reached after a request; any other `?outcome=` is ignored, as if none were given. */
const PAGE_OUTCOME = v.fallback(v.optional(v.picklist(['existing', 'retried', 'done'])), undefined);

/** Names no VM: email alone opens nothing. */
/** Only a browser that sent something other than the form gets here: the fields' own problems need the form's fields. */
const UNREADABLE_FORM = 'The form could not be read. Fill it in and submit it again.';

const RETRY_REFUSED =
  'This email already has a VM whose setup failed. Submit the new command from the browser where you first asked for it, or ask your instructor.';

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
  /** The waiting line's turn and command freshness; DEFAULT_LINE_POLICY when unset. */
  line?: LinePolicy;
}

/** The participants' side: the form, the request, their VM's page, the free count. Served by Lambda in AWS. */
export function createFormApp(options: FormAppOptions): Hono {
  const { sql, log } = options;
  const askAccessCode = options.accessCode !== undefined;
  const line = options.line ?? DEFAULT_LINE_POLICY;
  const app = new Hono();

  /** Every problem with the fields at once: a wrong access code is reported with the fields' own mistakes. */
  const fieldProblems = (values: Refusal['values']): { errors: FieldErrors; emailSuggestion?: string } => {
    const valid = validateVmRequest({ email: values.email, emailConfirmed: values.emailConfirmed, crdCommand: values.crdCommand });
    const invalid: InvalidRequest = valid.ok ? { errors: {} } : valid;
    const accessProblem = accessCodeProblem(options.accessCode, values.accessCode);
    return accessProblem ? { ...invalid, errors: { access_code: accessProblem, ...invalid.errors } } : invalid;
  };

  /** What a refusal says on the form page: the same problems the form's post was refused for. */
  const refusalPage = async (c: Context, refusal: Refusal) => {
    const { code, values } = refusal;
    const retryAfter = refusal.retryAt === undefined ? undefined : Math.max(1, refusal.retryAt - Math.floor(Date.now() / 1000));
    if (retryAfter !== undefined) c.header('retry-after', String(retryAfter));
    const formMessages: Record<Exclude<RefusalCode, 'invalid' | 'access_denied'>, string> = {
      unreadable: UNREADABLE_FORM,
      held_elsewhere: HELD_ELSEWHERE,
      browser_holds: browserHoldsMessage(refusal.hostname),
      retry_refused: RETRY_REFUSED,
      in_line_elsewhere: IN_LINE_ELSEWHERE,
      browser_in_line: BROWSER_IN_LINE,
      address_limited: addressLimitedMessage(retryAfter),
      no_vm_free: NO_VM_FREE,
      vm_starting: VM_STARTING,
    };
    const fields: { errors: FormErrors; emailSuggestion?: string } =
      code === 'invalid' || code === 'access_denied' ? fieldProblems(values) : { errors: { form: formMessages[code] } };
    return c.html(
      formPage({
        capacity: await fleetCapacity(sql),
        askAccessCode,
        values,
        errors: fields.errors,
        emailSuggestion: fields.emailSuggestion,
      }),
      REFUSAL_STATUS[code],
    );
  };

  // `?email=` comes from a VM page's "Get a new command": the participant keeps their address.
  // `?error=` is a refused post (Post/Redirect/Get): the page shows why, with what was typed.
  app.get('/', async (c) => {
    const refusal = readRefusal(c);
    if (refusal) return refusalPage(c, refusal);
    return c.html(
      formPage({ capacity: await fleetCapacity(sql), askAccessCode, values: { email: c.req.query('email')?.slice(0, MAX_EMAIL_LENGTH) } }),
    );
  });

  app.get('/api/unassigned_vms_count', async (c) => {
    const capacity = await fleetCapacity(sql);
    return c.json({
      count: capacity.free,
      onTheWay: capacity.onTheWay,
      readyInSeconds: capacity.readyInSeconds,
      message: freeCountText(capacity),
    });
  });

  app.use('/api/request_vm', capBody(MAX_FORM_BODY_BYTES));
  if (options.requestLimiter) app.use('/api/request_vm', options.requestLimiter);
  app.post('/api/request_vm', async (c) => {
    const json = wantsJson(c);
    const read = await readRequestForm(c);
    if (!read.ok) return json ? c.json({ error: read.message }, read.status) : redirectToRefusal(c, { code: 'unreadable', values: {} });
    const { email, emailConfirmed, crdCommand, accessCode, retryToken } = read.form;
    const values = { email, emailConfirmed, crdCommand, accessCode };
    const input = { email, emailConfirmed, crdCommand, retryToken: retryToken ?? getCookie(c, RETRY_COOKIE) };
    // A browser is sent to a page that shows the refusal; a JSON client gets it in the answer.
    const refuse = (refusal: Omit<Refusal, 'values'>, answer: object, headers?: Record<string, string>) =>
      json ? c.json(answer, REFUSAL_STATUS[refusal.code], headers) : redirectToRefusal(c, { ...refusal, values });
    const refuseFields = (code: 'invalid' | 'access_denied', invalid: { errors: FieldErrors; emailSuggestion?: string }) => {
      // JSON clients get the first problem as `error` too, as before; a refused access code comes first.
      const field = code === 'access_denied' ? 'access_code' : (FIELD_ORDER.find((name) => invalid.errors[name]) as keyof FieldErrors);
      return refuse(
        { code },
        {
          error: invalid.errors[field],
          field,
          errors: invalid.errors,
          ...(invalid.emailSuggestion ? { emailSuggestion: invalid.emailSuggestion } : {}),
        },
      );
    };
    if (accessCodeProblem(options.accessCode, accessCode)) return refuseFields('access_denied', fieldProblems(values));
    // The line is for people at the form; API clients (LabLink's, scripts) keep their "none free" answer.
    const result = await requestVm(sql, input, {
      address: options.clientAddress?.(c),
      addressLimit: options.addressLimit,
      line: json ? undefined : line,
    });
    switch (result.kind) {
      case 'in_line':
        log.info('vm.in_line', { email, joined: result.retryToken !== undefined });
        // The place's token becomes the VM's retry token: this browser then sees its VM, and may give it back.
        if (result.retryToken) setRetryCookie(c, result.retryToken);
        if (json) return c.json({ line: `/line/${result.ticket}` }, 202);
        return c.redirect(`/line/${result.ticket}`, 303);
      case 'in_line_elsewhere':
        log.warn('vm.email_in_line_elsewhere', { email });
        return refuse({ code: 'in_line_elsewhere' }, { error: IN_LINE_ELSEWHERE });
      case 'browser_in_line':
        log.warn('vm.browser_in_line', { email });
        return refuse({ code: 'browser_in_line' }, { error: BROWSER_IN_LINE, line: `/line/${result.ticket}` });
      case 'held_elsewhere':
        log.warn('vm.email_elsewhere', { email, hostname: result.hostname });
        return refuse({ code: 'held_elsewhere' }, { error: HELD_ELSEWHERE });
      case 'browser_holds':
        log.warn('vm.browser_holds', { hostname: result.hostname, email });
        return refuse(
          { code: 'browser_holds', hostname: result.hostname },
          { error: browserHoldsMessage(result.hostname), status: `/api/assignment/${result.assignmentId}` },
        );
      case 'address_limited':
        log.warn('vm.address_limited', { retryAfterSeconds: result.retryAfterSeconds });
        c.header('retry-after', String(result.retryAfterSeconds));
        return refuse(
          { code: 'address_limited', retryAt: Math.floor(Date.now() / 1000) + result.retryAfterSeconds },
          { error: addressLimitedMessage(result.retryAfterSeconds) },
        );
      case 'retry_refused':
        log.warn('vm.email_elsewhere', { email, hostname: result.hostname });
        return refuse({ code: 'retry_refused' }, { error: RETRY_REFUSED });
      case 'invalid':
        return refuseFields('invalid', result);
      case 'no_vm_free': {
        const starting = (await countWarmingVms(sql)) > 0;
        log.warn('vm.none_free', { starting });
        return refuse(
          { code: starting ? 'vm_starting' : 'no_vm_free' },
          { error: starting ? VM_STARTING : NO_VM_FREE },
          starting ? { 'retry-after': '120' } : {},
        );
      }
      case 'assigned':
        if (result.outcome !== 'existing')
          log.info(result.outcome === 'retried' ? 'vm.retried' : 'vm.assigned', { hostname: result.hostname, email: result.email });
        if (result.retryToken) setRetryCookie(c, result.retryToken);
        if (json) {
          return c.json({
            hostname: result.hostname,
            pin: result.pin,
            status: `/api/assignment/${result.assignmentId}`,
            ...(result.retryToken ? { retryToken: result.retryToken } : {}),
          });
        }
        // Post/Redirect/Get: reloading the VM's page never submits the form again; what a refusal kept is no longer needed.
        forgetRefusal(c);
        return c.redirect(`/vm/${result.assignmentId}${result.outcome === 'assigned' ? '' : `?outcome=${result.outcome}`}`, 303);
    }
  });

  addDoneRoutes(app, { sql, retryCookie: RETRY_COOKIE });
  addHandoverRoutes(app, { sql, log });
  addLineRoutes(app, { sql, line });

  app.get('/vm/:assignment', async (c) => {
    const assignmentId = c.req.param('assignment');
    const view = v.is(ASSIGNMENT_ID, assignmentId) ? await findAssignment(sql, assignmentId) : undefined;
    if (!view) return c.html(formPage({ capacity: await fleetCapacity(sql), askAccessCode, errors: { form: UNKNOWN_ASSIGNMENT } }), 404);
    // The participant was moved to another VM: their old link leads to the new one.
    if (view.assignmentId !== assignmentId) return c.redirect(`/vm/${view.assignmentId}`, 303);
    const idle = options.idleRelease && (await idleDeadlines(sql, options.idleRelease, assignmentId))[0];
    return c.html(
      vmPage({
        assignmentId,
        view,
        outcome: v.parse(PAGE_OUTCOME, c.req.query('outcome')),
        notices: html`${options.expiresAt && view.progress !== 'released' ? expiryNotice(options.expiresAt) : ''}${options.idleRelease ? idleNotice(idle, options.idleRelease) : ''}`,
      }),
    );
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
