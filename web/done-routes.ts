import { Context, Hono } from 'hono';
import { getCookie } from 'hono/cookie';
import { html } from 'hono/html';
import * as v from 'valibot';
import { ASSIGNMENT_PATTERN } from '../contract/wire';
import { sameOriginOnly } from '../http/same-origin';
import { findAssignment } from '../store/assignment';
import { resetVms } from '../store/reset';
import { Sql } from '../store/sql';
import { layout } from './layout';

const ASSIGNMENT_ID = v.pipe(v.string(), v.regex(ASSIGNMENT_PATTERN));
const NOT_YOURS = 'Only the browser that asked for this VM can give it back. If you need that, ask your instructor.';

function page(title: string, body: unknown) {
  return layout(title, html`<h1>${title}</h1><section class="card">${body}</section>`);
}

const unknown = (c: Context) =>
  c.html(page('No such VM request', html`<p>There is no VM request with this link. <a href="/">Request a VM from the form.</a></p>`), 404);

/** "I'm done" asks first: giving a VM back deletes the participant's files on it. */
function confirmDone(assignmentId: string, hostname: string) {
  return page(
    `Give ${hostname} back?`,
    html`<p>${hostname} is wiped for the next participant: <strong>your files on it are deleted</strong> and you can no longer connect to it. Save what you want to keep first.</p>
<form method="post" action="/vm/${assignmentId}/done" class="pair">
  <a class="button secondary" href="/vm/${assignmentId}" autofocus>Cancel</a>
  <button type="submit" class="danger" id="confirm-done">Yes, I'm done: give it back</button>
</form>`,
  );
}

/**
 * The participant's "I'm done": a confirmation page, then a form post that releases and resets
 * their VM. Only the browser holding the assignment's retry token (its cookie) may; it works
 * without JavaScript.
 */
export function addDoneRoutes(app: Hono, options: { sql: Sql; retryCookie: string }): void {
  const { sql } = options;
  app.use('/vm/:assignment/done', sameOriginOnly('Cross-site requests to give a VM back are refused.'));

  app.get('/vm/:assignment/done', async (c) => {
    const assignmentId = c.req.param('assignment');
    const view = v.is(ASSIGNMENT_ID, assignmentId) ? await findAssignment(sql, assignmentId) : undefined;
    if (!view) return unknown(c);
    // Released already, or moved to another VM: its page says which.
    if (view.assignmentId !== assignmentId || view.progress === 'released') return c.redirect(`/vm/${assignmentId}`, 303);
    return c.html(confirmDone(assignmentId, view.hostname));
  });

  app.post('/vm/:assignment/done', async (c) => {
    const assignmentId = c.req.param('assignment');
    if (!v.is(ASSIGNMENT_ID, assignmentId)) return unknown(c);
    const retryToken = getCookie(c, options.retryCookie);
    const released = retryToken ? await resetVms(sql, { scope: 'done', assignmentId, retryToken }) : [];
    if (released.length > 0) return c.redirect(`/vm/${assignmentId}?outcome=done`, 303);
    const view = await findAssignment(sql, assignmentId);
    if (!view) return unknown(c);
    if (view.assignmentId !== assignmentId || view.progress === 'released') return c.redirect(`/vm/${assignmentId}`, 303);
    return c.html(
      page(
        `${view.hostname} is not given back`,
        html`<p id="not-yours">${NOT_YOURS}</p><p><a href="/vm/${assignmentId}">Back to the VM's page</a></p>`,
      ),
      403,
    );
  });
}
