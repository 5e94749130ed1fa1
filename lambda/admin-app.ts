import { Hono } from 'hono';
import { basicAuth } from 'hono/basic-auth';
import { moveParticipant, returnToPool } from '../core/health';
import { Logger } from '../core/log';
import { secretsEqual } from '../core/secrets';
import { Sql } from '../core/sql';
import { VmSummary, listVms, releaseVm } from '../core/vms';
import { HOSTNAME_PATTERN } from '../core/wire';
import { sameOriginOnly } from '../http/same-origin';
import { AdminAction, actionConfirmPage, adminPage, adminRowsFragment, healthLabel, stateLabel } from './admin-page';

export const ADMIN_USER = 'admin';

export interface AdminAppOptions {
  sql: Sql;
  log: Logger;
  /** The admin password: printed by local mode, kept in Secrets Manager in AWS. */
  adminSecret: () => Promise<string>;
  /** When the fleet is scheduled to stop (ISO time), shown on the dashboard. */
  expiresAt?: string;
}

const CSV_COLUMNS = ['hostname', 'state', 'health', 'email', 'assigned_at', 'configured_at', 'last_seen', 'problem'] as const;

/** Quotes a CSV cell, and defuses cells a spreadsheet would run as a formula. */
function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) || text.startsWith("'") ? `"${text.replace(/"/g, '""')}"` : text;
}

export function assignmentsCsv(vms: VmSummary[]): string {
  const cells = (vm: VmSummary) => [vm.hostname, stateLabel(vm), healthLabel(vm), vm.email, vm.assigned_at, vm.configured_at, vm.last_seen, vm.failure ?? vm.error];
  const lines = [CSV_COLUMNS.join(','), ...vms.map((vm) => cells(vm).map(csvCell).join(','))];
  return `${lines.join('\r\n')}\r\n`;
}

type ActionOutcome = { ok: true; notice: string; body: Record<string, unknown> } | { ok: false; status: 404 | 409 | 503; message: string };

/** The instructor's side: the dashboard, the VM list as JSON and CSV, and the actions. All behind HTTP Basic. */
export function createAdminApp(options: AdminAppOptions): Hono {
  const { sql, log } = options;
  const app = new Hono();
  const requireAdmin = basicAuth({
    realm: 'LabLink admin',
    verifyUser: async (username, password) => secretsEqual(username, ADMIN_USER) && secretsEqual(password, await options.adminSecret()),
    invalidUserMessage: { error: 'Sign in as "admin" with the admin secret.' },
  });
  for (const path of ['/admin', '/admin/*', '/api/vms', '/api/vms/*', '/api/vms.csv']) app.use(path, requireAdmin);
  // Basic credentials ride along with any request the browser makes: refuse cross-site ones.
  app.use('/admin/*', sameOriginOnly());
  app.use('/api/vms/*', sameOriginOnly());

  const NO_SUCH_VM: ActionOutcome = { ok: false, status: 404, message: 'There is no VM with that name.' };
  const actions: Record<AdminAction, (hostname: string) => Promise<ActionOutcome>> = {
    release: async (hostname) => {
      const released = await releaseVm(sql, hostname);
      if (!released) return NO_SUCH_VM;
      log.info('vm.released', { hostname, email: released.previousEmail });
      return { ok: true, notice: `${hostname} was released and is free again.`, body: { hostname, state: 'waiting', previousEmail: released.previousEmail } };
    },
    move: async (hostname) => {
      const moved = await moveParticipant(sql, hostname);
      if (moved.kind === 'no_participant') return { ok: false, status: 409, message: `${hostname} has no participant to move.` };
      if (moved.kind === 'no_vm_free') return { ok: false, status: 503, message: 'No healthy VM is free to move the participant to.' };
      log.warn('vm.participant_moved', { from: hostname, to: moved.hostname, email: moved.email });
      return { ok: true, notice: `${moved.email} was moved from ${hostname} to ${moved.hostname}.`, body: { from: hostname, to: moved.hostname, email: moved.email } };
    },
    return: async (hostname) => {
      if (!(await returnToPool(sql, hostname))) return { ok: false, status: 409, message: `${hostname} is not marked failed.` };
      log.info('vm.returned_to_pool', { hostname });
      return { ok: true, notice: `${hostname} is back in the pool.`, body: { hostname } };
    },
  };
  const isAction = (name: string): name is AdminAction => name in actions;

  app.get('/admin', async (c) => {
    const notice = c.req.query('notice');
    return c.html(adminPage({ vms: await listVms(sql), notice: notice?.slice(0, 200), expiresAt: options.expiresAt }));
  });

  app.get('/admin/rows', async (c) => c.json(adminRowsFragment(await listVms(sql))));

  app.get('/admin/vms/:hostname/:action', async (c) => {
    const action = c.req.param('action');
    const vm = (await listVms(sql)).find((candidate) => candidate.hostname === c.req.param('hostname'));
    if (!vm || !isAction(action)) return c.text('There is no such VM or action.', 404);
    return c.html(actionConfirmPage(vm, action));
  });

  app.post('/admin/vms/:hostname/:action', async (c) => {
    const hostname = c.req.param('hostname');
    const action = c.req.param('action');
    if (!HOSTNAME_PATTERN.test(hostname) || !isAction(action)) return c.text('There is no such VM or action.', 404);
    const outcome = await actions[action](hostname);
    if (!outcome.ok) return c.text(outcome.message, outcome.status);
    return c.redirect(`/admin?notice=${encodeURIComponent(outcome.notice)}`, 303);
  });

  app.get('/api/vms', async (c) => c.json({ vms: await listVms(sql) }));

  app.post('/api/vms/:hostname/:action', async (c) => {
    const hostname = c.req.param('hostname');
    const action = c.req.param('action');
    if (!HOSTNAME_PATTERN.test(hostname) || !isAction(action)) return c.json({ error: 'There is no VM with that name, or no such action.' }, 404);
    const outcome = await actions[action](hostname);
    if (!outcome.ok) return c.json({ error: outcome.message }, outcome.status);
    return c.json(outcome.body);
  });

  app.get('/api/vms.csv', async (c) => {
    c.header('content-disposition', 'attachment; filename="lablink-assignments.csv"');
    return c.body(assignmentsCsv(await listVms(sql)), 200, { 'content-type': 'text/csv; charset=utf-8' });
  });

  return app;
}
