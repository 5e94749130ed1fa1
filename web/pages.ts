import { Capacity } from '../store/vms';
import { html, raw } from 'hono/html';
import { layout } from './layout';

export const CRD_HEADLESS_URL = 'https://remotedesktop.google.com/headless';
export const CRD_ACCESS_URL = 'https://remotedesktop.google.com/access';

export interface FormValues {
  email?: string;
  crdCommand?: string;
  accessCode?: string;
}

/** The form's fields in page order: the error summary lists them this way. */
export const FIELD_ORDER = ['email', 'access_code', 'crd_command'] as const;
export type FieldErrors = Partial<Record<(typeof FIELD_ORDER)[number], string>>;
/** `form`: a problem with the request as a whole (no VM free, a refused retry), not with one field. */
export type FormErrors = FieldErrors & { form?: string };

function fieldError(id: string, message: string | undefined) {
  return message ? html`<p class="error" id="${id}-error">${message}</p>` : '';
}

function invalidAttributes(id: string, message: string | undefined) {
  return message ? raw(` aria-invalid="true" aria-describedby="${id}-hint ${id}-error"`) : raw(` aria-describedby="${id}-hint"`);
}

/** All field problems at the top, each linking to its field; it takes focus (also without JavaScript) so it is read and seen first. */
function errorSummary(errors: FieldErrors) {
  const listed = FIELD_ORDER.filter((field) => errors[field]);
  if (listed.length === 0) return '';
  return html`<div class="error-summary" id="error-summary" tabindex="-1" autofocus aria-labelledby="error-summary-title">
  <h2 id="error-summary-title">${listed.length === 1 ? 'There is a problem' : `There are ${listed.length} problems`}</h2>
  <ul>${listed.map((field) => html`<li><a href="#${field}">${errors[field]}</a></li>`)}</ul>
</div>`;
}

/** A suggested correction stays a suggestion: the participant may keep the address they typed. */
function emailConfirmation(typed: string | undefined, suggestion: string | undefined) {
  if (!suggestion || !typed) return '';
  // The button needs the form's script; without it the participant edits the field.
  return html`<button type="button" class="secondary" data-use-email="${suggestion}" hidden>Use ${suggestion}</button>
    <div class="check"><input type="checkbox" id="email_confirmed" name="email_confirmed" value="${typed.trim()}"><label for="email_confirmed">Yes, ${typed.trim()} is my address</label></div>`;
}

/** What the form says about free VMs: how many, or when the ones on their way should be ready, or to ask the instructor. */
export function freeCountText(capacity: Capacity): string {
  if (capacity.free > 0) return `${capacity.free} VM${capacity.free === 1 ? ' is' : 's are'} free right now.`;
  if (capacity.onTheWay > 0) {
    const minutes = Math.ceil((capacity.readyInSeconds ?? 0) / 60);
    const when = minutes > 0 ? `in about ${minutes} min` : 'any moment now';
    const starting = `${capacity.onTheWay} VM${capacity.onTheWay === 1 ? ' is' : 's are'} starting`;
    return `No VM is free yet: ${starting}, and the first should be ready ${when}. Submit the form anyway to take a place in line.`;
  }
  return 'No VM is free right now. Submit the form to take a place in line; your page then shows when a VM should come.';
}

export function formPage(options: {
  capacity: Capacity;
  askAccessCode?: boolean;
  values?: FormValues;
  errors?: FormErrors;
  emailSuggestion?: string;
}) {
  const { capacity, values = {}, errors = {} } = options;
  const hasFieldErrors = FIELD_ORDER.some((field) => errors[field]);
  return layout(
    `${hasFieldErrors ? 'Error: ' : ''}Get your workshop VM`,
    html`<h1>Get your workshop VM</h1>
${errorSummary(errors)}
<p id="free-count" class="${capacity.free === 0 ? 'notice' : 'ok'}" role="status" aria-live="polite">${freeCountText(capacity)}</p>
${errors.form ? html`<p class="notice" role="alert">${errors.form}</p>` : ''}
<section class="card" aria-labelledby="step1">
  <h2 id="step1">Step 1: get a command from Google</h2>
  <ol class="steps">
    <li>Open <a href="${CRD_HEADLESS_URL}" target="_blank" rel="noopener">remotedesktop.google.com/headless</a> (opens in a new tab) and sign in with your Google account.</li>
    <li>Click <strong>Begin</strong>, then <strong>Next</strong>, then <strong>Authorize</strong>.</li>
    <li>Google shows commands for several systems. Copy the one under <strong>Debian Linux</strong>: it starts with <code>DISPLAY=</code>.</li>
  </ol>
  <p class="hint">The command works once and for a few minutes only, so do step 2 right away.</p>
</section>
<section class="card" aria-labelledby="step2">
  <h2 id="step2">Step 2: request your VM</h2>
  <form method="post" action="/api/request_vm" novalidate>
    <label for="email">Your email</label>
    <p class="hint" id="email-hint">Use the same email if you come back: you get the same VM.</p>
    <input id="email" name="email" type="email" autocomplete="email" required value="${values.email ?? ''}"${invalidAttributes('email', errors.email)}>
    ${fieldError('email', errors.email)}
    ${emailConfirmation(values.email, errors.email ? options.emailSuggestion : undefined)}
    ${
      options.askAccessCode
        ? html`<label for="access_code">Access code</label>
    <p class="hint" id="access_code-hint">Your instructor shows it in the room.</p>
    <input id="access_code" name="access_code" type="text" autocomplete="off" autocapitalize="off" spellcheck="false" required value="${values.accessCode ?? ''}"${invalidAttributes('access_code', errors.access_code)}>
    ${fieldError('access_code', errors.access_code)}`
        : ''
    }
    <label for="crd_command">The Debian Linux command from step 1</label>
    <p class="hint" id="crd_command-hint">Paste the whole command, starting with DISPLAY=.</p>
    <textarea id="crd_command" name="crd_command" required spellcheck="false" autocapitalize="off" autocomplete="off"${invalidAttributes('crd_command', errors.crd_command)}>${values.crdCommand ?? ''}</textarea>
    ${fieldError('crd_command', errors.crd_command)}
    <button type="submit">Get my VM</button>
  </form>
</section>
<section class="card" aria-labelledby="step3">
  <h2 id="step3">Step 3: connect</h2>
  <p>After step 2 you see your VM's name and a PIN. Open <a href="${CRD_ACCESS_URL}" target="_blank" rel="noopener">remotedesktop.google.com/access</a>, click your VM, and enter the PIN.</p>
</section>`,
    { script: 'form.js' },
  );
}
