import { Hono } from 'hono';
import { basicAuth } from 'hono/basic-auth';
import { csrf } from 'hono/csrf';
import { Logger } from '../core/log';
import { secretsEqual } from '../core/secrets';
import { Sql } from '../core/sql';
import { listVms, releaseVm, VmSummary } from '../core/vms';
import { HOSTNAME_PATTERN } from '../core/wire';
import { adminPage, releaseConfirmPage, stateLabel } from './admin-page';

export const ADMIN_USER = 'admin';

export interface AdminAppOptions {
  sql: Sql;
  log: Logger;
  /** The admin password: printed by local mode, kept in Secrets Manager in AWS. */
  adminSecret: () => Promise<string>;
}

const CSV_COLUMNS: (keyof VmSummary)[] = ['hostname', 'state', 'email', 'assigned_at', 'configured_at', 'last_seen', 'error'];

/** Quotes a CSV cell, and defuses cells a spreadsheet would run as a formula. */
function csvCell(value: unknown): string {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) || text.startsWith("'") ? `"${text.replace(/"/g, '""')}"` : text;
}

export function assignmentsCsv(vms: VmSummary[]): string {
  const lines = [CSV_COLUMNS.join(','), ...vms.map((vm) => CSV_COLUMNS.map((column) => csvCell(column === 'state' ? stateLabel(vm) : vm[column])).join(','))];
  return `${lines.join('\r\n')}\r\n`;
}

/** The instructor's side: the dashboard, the VM list as JSON and CSV, releasing a VM. All behind HTTP Basic. */
export function createAdminApp(options: AdminAppOptions): Hono {
  const { sql, log } = options;
  const app = new Hono();
  const requireAdmin = basicAuth({
    realm: 'LabLink admin',
    verifyUser: async (username, password) => secretsEqual(username, ADMIN_USER) && secretsEqual(password, await options.adminSecret()),
    invalidUserMessage: { error: 'Sign in as "admin" with the admin secret.' },
  });
  for (const path of ['/admin', '/admin/*', '/api/vms', '/api/vms/*', '/api/vms.csv']) app.use(path, requireAdmin);
  // Basic credentials ride along with any request the browser makes: refuse cross-site form posts.
  app.use('/admin/*', csrf());

  const release = async (hostname: string) => {
    if (!HOSTNAME_PATTERN.test(hostname)) return undefined;
    const released = await releaseVm(sql, hostname);
    if (released) log.info('vm.released', { hostname, email: released.previousEmail });
    return released;
  };

  app.get('/admin', async (c) => {
    const released = c.req.query('released');
    return c.html(adminPage({ vms: await listVms(sql), notice: released && HOSTNAME_PATTERN.test(released) ? `${released} was released and is free again.` : undefined }));
  });

  app.get('/admin/vms/:hostname/release', async (c) => {
    const vm = (await listVms(sql)).find((candidate) => candidate.hostname === c.req.param('hostname'));
    if (!vm) return c.text('There is no VM with that name.', 404);
    return c.html(releaseConfirmPage(vm));
  });

  app.post('/admin/vms/:hostname/release', async (c) => {
    const hostname = c.req.param('hostname');
    if (!(await release(hostname))) return c.text('There is no VM with that name.', 404);
    return c.redirect(`/admin?released=${encodeURIComponent(hostname)}`, 303);
  });

  app.get('/api/vms', async (c) => c.json({ vms: await listVms(sql) }));

  app.post('/api/vms/:hostname/release', async (c) => {
    const hostname = c.req.param('hostname');
    const released = await release(hostname);
    if (!released) return c.json({ error: 'There is no VM with that name.' }, 404);
    return c.json({ hostname, state: 'waiting', previousEmail: released.previousEmail });
  });

  app.get('/api/vms.csv', async (c) => {
    c.header('content-disposition', 'attachment; filename="lablink-assignments.csv"');
    return c.body(assignmentsCsv(await listVms(sql)), 200, { 'content-type': 'text/csv; charset=utf-8' });
  });

  return app;
}
