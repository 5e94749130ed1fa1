import { Context, Hono } from 'hono';
import { basicAuth } from 'hono/basic-auth';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { html } from 'hono/html';
import * as v from 'valibot';
import { LogLevel } from '../contract/wire';
import { DEFAULT_INSTANCE_TYPE, Pricing } from '../core/cost';
import { reportOf } from '../core/go-no-go';
import { IdleReleasePolicy } from '../core/idle-release';
import { Logger } from '../core/log';
import { secretsEqual } from '../core/secrets';
import { check } from '../core/validate';
import { readJsonObject } from '../http/json-body';
import { sameOriginOnly } from '../http/same-origin';
import { AssignmentRecord, listAssignmentHistory } from '../store/assignment';
import { listEmailAttempts } from '../store/email-attempts';
import { lastCheck, recordCheck } from '../store/go-no-go-checks';
import { createHandoverLink } from '../store/handover';
import { moveParticipant } from '../store/health';
import { idleDeadlines } from '../store/idle-deadlines';
import { CANNOT_RESET, ResetScope, resetVms } from '../store/reset';
import { requestSetupRerun } from '../store/setup-rerun';
import { Sql } from '../store/sql';
import { VmLogView, readVmLogs } from '../store/vm-logs';
import { VmSummary, countFreeVms, listVms } from '../store/vms';
import { DEFAULT_LINE_POLICY, LinePolicy, countInLine } from '../store/waiting-line';
import { workshopReport } from '../store/workshop-report';
import {
  AdminAction,
  FleetAction,
  actionConfirmPage,
  actionRefusedPage,
  adminPage,
  adminRowsFragment,
  fleetConfirmPage,
  stateLabel,
  vmLogPage,
} from './admin-page';
import { CHECK_RESULT, FLEET_ACTION, HOSTNAME, LOG_LEVEL, VM_ACTION_PARAMS } from './admin-requests';
import { csvLines } from './csv';
import { emailAttemptsSection, handoverConfirmPage, handoverLinkPage } from './handover-admin-pages';
import { idleSection } from './idle-notices';
import { lineSection } from './line-page';
import { parseVmOrder, sortVms } from './vm-order';
import { workshopReportCsv, workshopReportPage } from './workshop-report-page';

export const ADMIN_USER = 'admin';
const NO_SUCH_VM_OR_ACTION = 'There is no such VM or action.';
/** Carries the outcome of an admin action to the next dashboard view. */
const NOTICE_COOKIE = 'lablink_notice';

export interface AdminAppOptions {
  sql: Sql;
  log: Logger;
  /** The admin password: printed by local mode, kept in Secrets Manager in AWS. */
  adminSecret: () => Promise<string>;
  /** When the fleet is scheduled to stop (ISO time), shown on the dashboard. */
  expiresAt?: string;
  /** Lists the VMs held by nobody and their time left. */
  idleRelease?: IdleReleasePolicy;
  /** Prices the after-workshop report; the deploy's default instance type when unset. */
  pricing?: Pricing;
  /** Counts who waits in line; DEFAULT_LINE_POLICY when unset. */
  line?: LinePolicy;
}

const CSV_COLUMNS = ['hostname', 'email', 'assigned_at', 'ended_at', 'ended_how', 'moved_from', 'vm_state_now', 'vm_problem_now'] as const;

/** How an assignment ended, in words: moved on, taken back, or not yet. */
function endedHow(record: AssignmentRecord): string {
  if (record.moved_to) return `moved to ${record.moved_to}`;
  return record.ended_at ? 'taken back' : '';
}

/** Every assignment ever made, one line each, with the state of the VMs still in use. */
export function assignmentsCsv(history: AssignmentRecord[], vms: VmSummary[]): string {
  const current = new Map(vms.filter((vm) => vm.email).map((vm) => [`${vm.hostname} ${vm.email}`, vm]));
  const cells = (record: AssignmentRecord) => {
    const vm = record.ended_at ? undefined : current.get(`${record.hostname} ${record.email}`);
    return [
      record.hostname,
      record.email,
      record.assigned_at,
      record.ended_at,
      endedHow(record),
      record.moved_from,
      vm && stateLabel(vm),
      vm && (vm.failure ?? vm.error),
    ];
  };
  return csvLines(CSV_COLUMNS, history.map(cells));
}

/** A VM's log as a plain-text file: one line each, oldest first. */
export function vmLogText(view: VmLogView): string {
  return view.lines.map((line) => `${line.at} ${line.level.toUpperCase().padEnd(5)} ${line.source.padEnd(5)} ${line.text}\n`).join('');
}

type LogsRequest = { ok: true; view: VmLogView; level?: LogLevel } | { ok: false; status: 400 | 404; message: string };

type ActionOutcome =
  | { ok: true; notice: string; body: Record<string, unknown> }
  /** `title` and `next` head and follow the message on the page a browser gets. */
  | { ok: false; status: 404 | 409 | 503; message: string; title: string; next?: string };

/** The instructor's side: the dashboard, the VM list as JSON and CSV, each VM's log, and the actions. All behind HTTP Basic. */
export function createAdminApp(options: AdminAppOptions): Hono {
  const { sql, log } = options;
  const pricing = options.pricing ?? { instanceType: DEFAULT_INSTANCE_TYPE };
  const app = new Hono();
  const requireAdmin = basicAuth({
    realm: 'LabLink admin',
    verifyUser: async (username, password) => secretsEqual(username, ADMIN_USER) && secretsEqual(password, await options.adminSecret()),
    invalidUserMessage: { error: 'Sign in as "admin" with the admin secret.' },
  });
  for (const path of [
    '/admin',
    '/admin/*',
    '/api/vms',
    '/api/vms/*',
    '/api/vms.csv',
    '/api/assignments',
    '/api/fleet/*',
    '/api/go-no-go',
    '/api/report',
    '/api/report.csv',
  ])
    app.use(path, requireAdmin);
  // Basic credentials ride along with any request the browser makes: refuse cross-site ones.
  app.use('/admin/*', sameOriginOnly());
  app.use('/api/vms/*', sameOriginOnly());
  app.use('/api/fleet/*', sameOriginOnly());
  app.use('/api/go-no-go', sameOriginOnly());

  const NO_SUCH_VM: ActionOutcome = { ok: false, status: 404, message: 'There is no VM with that name.', title: 'No such VM' };
  const reset = async (target: ResetScope) => {
    const taken = await resetVms(sql, target);
    for (const vm of taken) log.info('vm.reset_requested', { hostname: vm.hostname, email: vm.previousEmail });
    return taken;
  };
  const resetOne = async (hostname: string, notice: string): Promise<ActionOutcome> => {
    const [taken] = await reset({ scope: 'one', hostname });
    if (!taken) return NO_SUCH_VM;
    if (!taken.resetting && !taken.previousEmail) {
      // A VM with LabLink's own client has no setup to re-run: its failure says how it comes back.
      const next = taken.failure === CANNOT_RESET ? undefined : 'Re-run its setup, or reboot it.';
      return {
        ok: false,
        status: 409,
        message: `${hostname} cannot reset now: ${taken.failure ?? 'its agent does not reset'}.`,
        title: `${hostname} cannot reset`,
        next,
      };
    }
    if (!taken.resetting) {
      return {
        ok: true,
        notice: `${hostname} was taken back from ${taken.previousEmail}. ${taken.failure}.`,
        body: { hostname, state: 'failed', previousEmail: taken.previousEmail, failure: taken.failure },
      };
    }
    return { ok: true, notice: `${hostname} ${notice}`, body: { hostname, state: 'resetting', previousEmail: taken.previousEmail } };
  };
  /** The notice for a fleet action: how many VMs reset, and which cannot. */
  const fleetNotice = (taken: Awaited<ReturnType<typeof reset>>, resetNotice: (count: number) => string) => {
    const stuck = taken.filter((vm) => !vm.resetting).map((vm) => vm.hostname);
    const resetting = taken.length - stuck.length;
    return `${resetNotice(resetting)}${stuck.length > 0 ? ` Not reset (see their failure on the dashboard): ${stuck.join(', ')}.` : ''}`;
  };
  /** `confirmed`: the admin confirmed an action that disturbs a connected participant. */
  const actions: Record<AdminAction, (hostname: string, confirmed: boolean) => Promise<ActionOutcome>> = {
    release: (hostname) => resetOne(hostname, 'was released; it is free again once its agent has reset it.'),
    move: async (hostname) => {
      const moved = await moveParticipant(sql, hostname);
      if (moved.kind === 'no_participant')
        return { ok: false, status: 409, message: `${hostname} has no participant to move.`, title: `Nobody to move on ${hostname}` };
      if (moved.kind === 'no_vm_free') {
        return {
          ok: false,
          status: 503,
          message: `No healthy VM is free to move the participant to, so they stay on ${hostname}.`,
          title: 'No free VM to move the participant to',
          next: 'Release a VM nobody uses, return a repaired one to the pool, or add VMs (npx cdk deploy -c vmCount=<more>, ready in about 10 minutes); then try again.',
        };
      }
      log.warn('vm.participant_moved', { from: hostname, to: moved.hostname, email: moved.email });
      return {
        ok: true,
        notice: `${moved.email} was moved from ${hostname} to ${moved.hostname}.`,
        body: { from: hostname, to: moved.hostname, email: moved.email },
      };
    },
    reset: (hostname) => resetOne(hostname, 'is being reset; it returns to the pool once its agent is done.'),
    'rerun-setup': async (hostname, confirmed) => {
      const request = await requestSetupRerun(sql, hostname, confirmed);
      if (request.kind === 'no_such_vm') return NO_SUCH_VM;
      if (request.kind === 'participant_connected') {
        return {
          ok: false,
          status: 409,
          message: `${request.email ?? 'A participant'} ${request.email ? 'has' : 'is using'} ${hostname}, and re-running the setup may disturb them.`,
          title: `Someone is using ${hostname}`,
          next: 'Confirm on the action’s page (or send confirm=yes) to re-run it anyway.',
        };
      }
      log.info('vm.setup_rerun_requested', { hostname, confirmed });
      return {
        ok: true,
        notice: `${hostname} runs its setup again when its agent next reports.`,
        body: { hostname, setupRerun: 'requested' },
      };
    },
  };
  const fleetActions: Record<FleetAction, () => Promise<ActionOutcome>> = {
    'reset-released': async () => {
      const taken = await reset({ scope: 'released' });
      return {
        ok: true,
        notice: fleetNotice(taken, (count) => `${count} released VM${count === 1 ? ' is' : 's are'} being reset.`),
        body: {
          resetting: taken.filter((vm) => vm.resetting).map((vm) => vm.hostname),
          notReset: taken.filter((vm) => !vm.resetting).map((vm) => vm.hostname),
        },
      };
    },
    'end-session': async () => {
      const taken = await reset({ scope: 'all' });
      log.warn('fleet.end_of_session', { vms: taken.length });
      return {
        ok: true,
        notice: fleetNotice(
          taken,
          (count) => `End of session: all VMs were taken back; ${count} ${count === 1 ? 'is' : 'are'} being reset.`,
        ),
        body: {
          resetting: taken.filter((vm) => vm.resetting).map((vm) => vm.hostname),
          notReset: taken.filter((vm) => !vm.resetting).map((vm) => vm.hostname),
          released: taken.filter((vm) => vm.previousEmail).map((vm) => vm.previousEmail),
        },
      };
    },
  };
  const readLogs = async (c: Context): Promise<LogsRequest> => {
    const hostname = c.req.param('hostname') ?? '';
    const level = check(LOG_LEVEL, c.req.query('level') || undefined);
    if (!level.ok) return { ok: false, status: 400, message: level.message };
    const view = v.is(HOSTNAME, hostname) ? await readVmLogs(sql, hostname, level.value) : undefined;
    if (!view) return { ok: false, status: 404, message: 'There is no VM with that name.' };
    return { ok: true, view, level: level.value };
  };

  /**
   * After an action, the dashboard says what happened. The text travels in a short-lived cookie,
   * not the URL, so nobody can send an admin a link that shows a notice of their own.
   */
  const showNotice = (c: Context, notice: string) => {
    setCookie(c, NOTICE_COOKIE, notice, {
      path: '/admin',
      httpOnly: true,
      sameSite: 'Strict',
      secure: new URL(c.req.url).protocol === 'https:',
      maxAge: 60,
    });
    return c.redirect('/admin', 303);
  };

  app.get('/admin', async (c) => {
    const notice = getCookie(c, NOTICE_COOKIE);
    if (notice !== undefined) deleteCookie(c, NOTICE_COOKIE, { path: '/admin' });
    const order = parseVmOrder(c.req.query('sort'), c.req.query('dir'));
    if (!order.ok) return c.text(order.message, 400);
    const [vms, check, idle, attempts, waiting] = await Promise.all([
      listVms(sql),
      lastCheck(sql),
      options.idleRelease ? idleDeadlines(sql, options.idleRelease) : [],
      listEmailAttempts(sql),
      countInLine(sql, options.line ?? DEFAULT_LINE_POLICY),
    ]);
    const sections = html`${lineSection(waiting)}${idleSection(idle)}${emailAttemptsSection(attempts)}`;
    return c.html(
      adminPage({
        vms: sortVms(vms, order.order),
        order: order.order,
        notice: notice?.slice(0, 200),
        expiresAt: options.expiresAt,
        lastCheck: check,
        sections,
      }),
    );
  });

  app.get('/admin/rows', async (c) => {
    const order = parseVmOrder(c.req.query('sort'), c.req.query('dir'));
    if (!order.ok) return c.json({ error: order.message }, 400);
    const [vms, waiting] = await Promise.all([listVms(sql), countInLine(sql, options.line ?? DEFAULT_LINE_POLICY)]);
    return c.json({ ...adminRowsFragment(sortVms(vms, order.order)), line: lineSection(waiting).toString() });
  });

  // Before the action routes, whose :action would take "logs" too.
  app.get('/admin/vms/:hostname/logs', async (c) => {
    const logs = await readLogs(c);
    return logs.ok ? c.html(vmLogPage(logs.view, logs.level)) : c.text(logs.message, logs.status);
  });

  app.get('/admin/vms/:hostname/logs.txt', async (c) => {
    const logs = await readLogs(c);
    if (!logs.ok) return c.text(logs.message, logs.status);
    c.header('content-disposition', `attachment; filename="${logs.view.hostname}-log.txt"`);
    // Agent-supplied text: never let a browser guess it is HTML.
    c.header('x-content-type-options', 'nosniff');
    return c.text(vmLogText(logs.view));
  });

  app.get('/admin/fleet/:action', async (c) => {
    const action = c.req.param('action');
    if (!v.is(FLEET_ACTION, action)) return c.text('There is no such action.', 404);
    return c.html(fleetConfirmPage(await listVms(sql), action));
  });

  app.post('/admin/fleet/:action', async (c) => {
    const action = c.req.param('action');
    if (!v.is(FLEET_ACTION, action)) return c.text('There is no such action.', 404);
    const outcome = await fleetActions[action]();
    if (!outcome.ok) return c.text(outcome.message, outcome.status);
    return showNotice(c, outcome.notice);
  });

  app.post('/api/fleet/:action', async (c) => {
    const action = c.req.param('action');
    if (!v.is(FLEET_ACTION, action)) return c.json({ error: 'There is no such action: use reset-released or end-session.' }, 404);
    const outcome = await fleetActions[action]();
    return outcome.ok ? c.json(outcome.body) : c.json({ error: outcome.message }, outcome.status);
  });

  const handOver = async (c: Context) => {
    const hostname = c.req.param('hostname') ?? '';
    const link = v.is(HOSTNAME, hostname) ? await createHandoverLink(sql, hostname) : { kind: 'no_participant' as const };
    if (link.kind !== 'created') return { ok: false as const, message: `${hostname} has no participant to hand over.` };
    log.warn('vm.handover_link_created', { hostname, email: link.email, expiresAt: link.expiresAt });
    return {
      ok: true as const,
      hostname,
      email: link.email,
      expiresAt: link.expiresAt,
      url: `${new URL(c.req.url).origin}/handover/${link.token}`,
    };
  };

  // Before the action routes, whose :action would take "handover" too.
  app.get('/admin/vms/:hostname/handover', async (c) => {
    const hostname = c.req.param('hostname');
    const vm = (await listVms(sql)).find((candidate) => candidate.hostname === hostname);
    if (!vm) return c.text(NO_SUCH_VM_OR_ACTION, 404);
    if (!vm.email) return c.text(`${hostname} has no participant to hand over.`, 409);
    return c.html(handoverConfirmPage(vm));
  });

  app.post('/admin/vms/:hostname/handover', async (c) => {
    const link = await handOver(c);
    if (!link.ok) return c.text(`${link.message} Nothing was changed.`, 409);
    return c.html(handoverLinkPage(link));
  });

  app.post('/api/vms/:hostname/handover', async (c) => {
    const link = await handOver(c);
    if (!link.ok) return c.json({ error: link.message }, 409);
    return c.json({ hostname: link.hostname, email: link.email, link: link.url, expiresAt: link.expiresAt }, 201);
  });

  app.get('/admin/report', async (c) => c.html(workshopReportPage(await workshopReport(sql, pricing))));

  app.get('/api/report', async (c) => c.json(await workshopReport(sql, pricing)));

  app.get('/api/report.csv', async (c) => {
    c.header('content-disposition', 'attachment; filename="lablink-report.csv"');
    return c.body(workshopReportCsv(await workshopReport(sql, pricing)), 200, { 'content-type': 'text/csv; charset=utf-8' });
  });

  app.get('/admin/vms/:hostname/:action', async (c) => {
    const params = c.req.param();
    if (!v.is(VM_ACTION_PARAMS, params)) return c.text(NO_SUCH_VM_OR_ACTION, 404);
    const { hostname, action } = params;
    const vm = (await listVms(sql)).find((candidate) => candidate.hostname === hostname);
    if (!vm) return c.text(NO_SUCH_VM_OR_ACTION, 404);
    const warning =
      action === 'move' && (await countFreeVms(sql)) === 0
        ? 'No healthy VM is free right now, so moving would not work: free or add one first.'
        : undefined;
    return c.html(actionConfirmPage(vm, action, warning));
  });

  app.post('/admin/vms/:hostname/:action', async (c) => {
    const params = c.req.param();
    if (!v.is(VM_ACTION_PARAMS, params)) return c.text(NO_SUCH_VM_OR_ACTION, 404);
    const { hostname, action } = params;
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const outcome = await actions[action](hostname, form.confirm === 'yes');
    if (!outcome.ok) return c.html(actionRefusedPage(hostname, action, outcome), outcome.status);
    return showNotice(c, outcome.notice);
  });

  app.get('/api/vms', async (c) => c.json({ vms: (await listVms(sql)).map((vm) => ({ ...vm, status_label: stateLabel(vm) })) }));

  app.get('/api/vms/:hostname/logs', async (c) => {
    const logs = await readLogs(c);
    return logs.ok ? c.json(logs.view) : c.json({ error: logs.message }, logs.status);
  });

  app.post('/api/vms/:hostname/:action', async (c) => {
    const params = c.req.param();
    if (!v.is(VM_ACTION_PARAMS, params)) return c.json({ error: 'There is no VM with that name, or no such action.' }, 404);
    const { hostname, action } = params;
    const outcome = await actions[action](hostname, c.req.query('confirm') === 'yes');
    if (!outcome.ok) return c.json({ error: outcome.message }, outcome.status);
    return c.json(outcome.body);
  });

  // What `npm run check` reads (the expiry it judges) and where it posts its result for the dashboard.
  app.get('/api/go-no-go', async (c) => c.json({ expiresAt: options.expiresAt ?? null, lastCheck: (await lastCheck(sql)) ?? null }));

  app.post('/api/go-no-go', async (c) => {
    const read = await readJsonObject(c);
    if (!read.ok) return c.json({ error: read.message }, read.status);
    const body = check(CHECK_RESULT, read.body);
    if (!body.ok) return c.json({ error: body.message }, 400);
    // The verdict follows from the lines: a client cannot store GO beside a failure.
    const report = reportOf(body.value.lines);
    await recordCheck(sql, report);
    log.info('go_no_go.recorded', { go: report.go, problems: report.problems });
    return c.json(report, 201);
  });

  app.get('/api/vms.csv', async (c) => {
    c.header('content-disposition', 'attachment; filename="lablink-assignments.csv"');
    return c.body(assignmentsCsv(await listAssignmentHistory(sql), await listVms(sql)), 200, { 'content-type': 'text/csv; charset=utf-8' });
  });

  app.get('/api/assignments', async (c) => c.json({ assignments: await listAssignmentHistory(sql) }));

  return app;
}
