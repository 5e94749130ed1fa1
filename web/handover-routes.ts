import { Context, Hono } from 'hono';
import { html } from 'hono/html';
import { HandoverRefusal, handoverLinkState, useHandoverLink } from '../store/handover';
import { Logger } from '../core/log';
import { Sql } from '../store/sql';
import { sameOriginOnly } from '../http/same-origin';
import { layout } from './layout';
import { setRetryCookie } from './retry-cookie';

const REFUSALS: Record<HandoverRefusal, { status: 404 | 410; title: string; text: string }> = {
  unknown: {
    status: 404,
    title: 'No such hand-over link',
    text: 'This hand-over link does not exist. Check that you copied all of it, or ask your instructor for a new one.',
  },
  used: {
    status: 410,
    title: 'This link was already used',
    text: 'A hand-over link works once, and this one has been opened already. If that was not you, ask your instructor for a new link.',
  },
  expired: {
    status: 410,
    title: 'This link has expired',
    text: 'A hand-over link works for 30 minutes. Ask your instructor for a new one.',
  },
  ended: {
    status: 410,
    title: 'This VM is no longer yours',
    text: 'The VM this link was for has been given back or moved since. Ask your instructor, or request a VM from the form.',
  },
};

function page(title: string, body: unknown) {
  return layout(title, html`<h1>${title}</h1><section class="card">${body}</section>`);
}

function refused(c: Context, refusal: HandoverRefusal) {
  const { status, title, text } = REFUSALS[refusal];
  return c.html(
    page(title, html`<p id="handover-refused">${text} Nothing was changed.</p><p><a href="/">Back to the form</a></p>`),
    status,
  );
}

/**
 * The instructor's one-time link that gives a participant's VM to a new browser. Opening it asks
 * first (a link preview or a mail scanner that fetches it uses nothing); the form post binds
 * this browser, and the browser that held the VM before loses it.
 */
export function addHandoverRoutes(app: Hono, options: { sql: Sql; log: Logger }): void {
  const { sql, log } = options;
  app.use('/handover/:token', sameOriginOnly('Cross-site requests to take over a VM are refused.'));

  app.get('/handover/:token', async (c) => {
    const token = c.req.param('token');
    const state = await handoverLinkState(sql, token);
    if (state.kind !== 'open') return refused(c, state.kind);
    return c.html(
      page(
        `Open ${state.hostname} in this browser?`,
        html`<p>Your instructor sent you this link to use ${state.hostname} from this browser. It works once: afterwards, the browser you used before can no longer retry the setup or give the VM back.</p>
<form method="post" action="/handover/${token}" class="pair"><button type="submit" id="take-over">Use ${state.hostname} in this browser</button></form>`,
      ),
    );
  });

  app.post('/handover/:token', async (c) => {
    const used = await useHandoverLink(sql, c.req.param('token'));
    if (used.kind !== 'bound') return refused(c, used.kind);
    log.warn('vm.handed_over', { hostname: used.hostname });
    setRetryCookie(c, used.retryToken);
    return c.redirect(`/vm/${used.assignmentId}`, 303);
  });
}
