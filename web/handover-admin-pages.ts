import { html } from 'hono/html';
import { EmailAttempt } from '../store/email-attempts';
import { VmSummary } from '../store/vms';
import { confirmPage } from './admin-page';
import { layout } from './layout';

function when(value: string): string {
  return `${value.slice(0, 19).replace('T', ' ')} UTC`;
}

/** The dashboard's list of people who asked with an email whose VM another browser holds. */
export function emailAttemptsSection(attempts: EmailAttempt[]) {
  if (attempts.length === 0) return '';
  return html`<section id="email-attempts" aria-labelledby="attempts-heading"><h2 id="attempts-heading">Asked for a VM another browser holds</h2>
<p>Someone submitted the form with an email that already has a VM, from another browser. If it is the participant (a new laptop, another browser), hand the VM over; if not, it may be someone trying emails.</p>
<table class="vms"><thead><tr><th scope="col">When</th><th scope="col">Email</th><th scope="col">VM</th><th scope="col">Action</th></tr></thead>
<tbody>${attempts.map(
    (attempt) =>
      html`<tr><td class="when"><time datetime="${attempt.attempted_at}">${when(attempt.attempted_at)}</time></td><td>${attempt.email}</td><td>${attempt.hostname}</td><td>${
        attempt.still_assigned
          ? html`<a href="/admin/vms/${attempt.hostname}/handover">Hand over to a new browser</a>`
          : html`<span class="muted">no longer theirs</span>`
      }</td></tr>`,
  )}</tbody></table></section>`;
}

export function handoverConfirmPage(vm: VmSummary) {
  return confirmPage(
    `Hand ${vm.hostname} over to a new browser?`,
    html`<p>You get a link for <strong>${vm.email}</strong> that works once, within 30 minutes. Whoever opens it gets ${vm.hostname}'s page and PIN in their browser, and can retry its setup or give it back; the browser that had it can no longer do either. Send it only to the participant, through a channel you trust. A new link replaces an unused one.</p>`,
    `/admin/vms/${vm.hostname}/handover`,
    'Create the link',
  );
}

export function handoverLinkPage(link: { hostname: string; email: string; url: string; expiresAt: string }) {
  return layout(
    `Hand-over link for ${link.hostname}`,
    html`<h1>Hand-over link for ${link.hostname}</h1>
<section class="card">
  <p>Send this link to <strong>${link.email}</strong>. It works once, until ${when(link.expiresAt)}; it is not shown again.</p>
  <p><input id="handover-link" type="text" readonly value="${link.url}" aria-label="Hand-over link"></p>
  <p><a class="button" href="/admin">Back to all VMs</a></p>
</section>`,
  );
}
