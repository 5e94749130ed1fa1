import { Context, Hono } from 'hono';
import { html } from 'hono/html';
import * as v from 'valibot';
import { formatCrdCommand, parseCrdCommand } from '../core/crd-command';
import { Sql } from '../store/sql';
import { LinePolicy, linePlace, refreshLineCommand, serveLine } from '../store/waiting-line';
import { ASSIGNMENT_PATTERN } from '../contract/wire';
import { capBody } from '../http/limits';
import { sameOriginOnly } from '../http/same-origin';
import { layout } from './layout';
import { linePage } from './line-page';
import { readRequestForm } from './request-form';

/** A ticket is a uuid, like an assignment id: unguessable, it is the place's key. */
const TICKET = v.pipe(v.string(), v.regex(ASSIGNMENT_PATTERN));
const MAX_BODY_BYTES = 16 * 1024;

const unknown = (c: Context) =>
  c.html(
    layout(
      'No such place in line',
      html`<h1>No such place in line</h1><p>There is no place in line with this link. <a href="/">Request a VM from the form.</a></p>`,
    ),
    404,
  );

/**
 * A participant's place in the waiting line: its page (which serves the line each time it is
 * loaded, so a freed VM reaches the first in line as soon as anyone waiting looks) and the
 * form that sends a fresh command. Plain pages and form posts: no JavaScript needed.
 */
export function addLineRoutes(app: Hono, options: { sql: Sql; line: LinePolicy }): void {
  const { sql, line } = options;

  const show = async (c: Context, ticket: string, error?: string) => {
    const place = await linePlace(sql, ticket, line);
    if (!place) return unknown(c);
    if (place.kind === 'served') return c.redirect(`/vm/${place.assignmentId}`, 303);
    return c.html(linePage(ticket, place, error), error ? 400 : place.kind === 'passed' ? 410 : 200);
  };

  app.get('/line/:ticket', async (c) => {
    const ticket = c.req.param('ticket');
    return v.is(TICKET, ticket) ? show(c, ticket) : unknown(c);
  });

  app.use('/line/:ticket', sameOriginOnly('Cross-site requests to a place in line are refused.'), capBody(MAX_BODY_BYTES));
  app.post('/line/:ticket', async (c) => {
    const ticket = c.req.param('ticket');
    if (!v.is(TICKET, ticket)) return unknown(c);
    const read = await readRequestForm(c);
    if (!read.ok) return show(c, ticket, read.message);
    const command = parseCrdCommand(read.form.crdCommand);
    if (!command.ok) return show(c, ticket, command.message);
    if (await refreshLineCommand(sql, ticket, formatCrdCommand(command.command), line)) await serveLine(sql, line);
    return c.redirect(`/line/${ticket}`, 303);
  });
}
