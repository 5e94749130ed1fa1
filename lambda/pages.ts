import { html, raw } from 'hono/html';

const STYLE = raw(`<style>
  :root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
  body { margin: 0; background: #f4f6f8; color: #1b1f24; line-height: 1.5; }
  main { max-width: 42rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
  h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
  ol.steps { padding-left: 1.25rem; }
  section.card { background: #fff; border-radius: .5rem; padding: 1rem 1.25rem; margin: 1rem 0; box-shadow: 0 1px 3px #0002; }
  label { display: block; font-weight: 600; margin-top: 1rem; }
  input, textarea { width: 100%; box-sizing: border-box; font: inherit; padding: .5rem; border: 1px solid #6b7280; border-radius: .375rem; }
  textarea { min-height: 7rem; font-family: ui-monospace, monospace; font-size: .9rem; }
  button { margin-top: 1.25rem; font: inherit; font-weight: 600; padding: .6rem 1.4rem; border: 0; border-radius: .375rem; background: #0b57d0; color: #fff; cursor: pointer; }
  button:focus, a:focus, input:focus, textarea:focus { outline: 3px solid #f59e0b; outline-offset: 2px; }
  .error { color: #b42318; font-weight: 600; margin: .25rem 0 0; }
  .notice { background: #fff4e5; border-left: 4px solid #b54708; padding: .75rem 1rem; }
  .big { font-size: 2rem; font-weight: 700; font-family: ui-monospace, monospace; letter-spacing: .1em; }
  .muted { color: #4b5563; }
  a { color: #0b57d0; }
</style>`);

function layout(title: string, body: unknown) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · LabLink</title>
${STYLE}
</head>
<body><main>${body}</main></body>
</html>`;
}

export interface FormValues {
  email?: string;
  crdCommand?: string;
}

export interface FormErrors {
  email?: string;
  crd_command?: string;
  form?: string;
}

function fieldError(id: string, message: string | undefined) {
  return message ? html`<p class="error" id="${id}-error" role="alert">${message}</p>` : '';
}

export function formPage(options: { freeVms: number; values?: FormValues; errors?: FormErrors }) {
  const { freeVms, values = {}, errors = {} } = options;
  const availability =
    freeVms > 0
      ? html`<p class="muted" id="free-count">${freeVms} VM${freeVms === 1 ? '' : 's'} free right now.</p>`
      : html`<p class="notice" id="free-count">No VM is free right now. Ask your instructor; you can still prepare step 1.</p>`;
  return layout(
    'Get your workshop VM',
    html`<h1>Get your workshop VM</h1>
${availability}
${errors.form ? html`<p class="notice" role="alert">${errors.form}</p>` : ''}
<section class="card">
  <h2>Step 1: get a Chrome Remote Desktop command from Google</h2>
  <ol class="steps">
    <li>Open <a href="https://remotedesktop.google.com/headless" target="_blank" rel="noopener">remotedesktop.google.com/headless</a> (opens in a new tab) and sign in with your Google account.</li>
    <li>Click <strong>Begin</strong>, then <strong>Next</strong>, then <strong>Authorize</strong>.</li>
    <li>Copy the command under <strong>Debian Linux</strong> (it starts with <code>DISPLAY=</code>).</li>
  </ol>
</section>
<section class="card">
  <h2>Step 2: request your VM</h2>
  <form method="post" action="/api/request_vm">
    <label for="email">Your email</label>
    <input id="email" name="email" type="email" autocomplete="email" required value="${values.email ?? ''}"${errors.email ? raw(' aria-invalid="true" aria-describedby="email-error"') : ''}>
    ${fieldError('email', errors.email)}
    <label for="crd_command">The Debian Linux command from step 1</label>
    <textarea id="crd_command" name="crd_command" required spellcheck="false" autocapitalize="off"${errors.crd_command ? raw(' aria-invalid="true" aria-describedby="crd_command-error"') : ''}>${values.crdCommand ?? ''}</textarea>
    ${fieldError('crd_command', errors.crd_command)}
    <button type="submit">Get my VM</button>
  </form>
</section>`,
  );
}

export function successPage(options: { hostname: string; pin: string; fresh: boolean }) {
  return layout(
    'Your VM is ready',
    html`<h1>Your VM: <span id="hostname">${options.hostname}</span></h1>
${options.fresh ? '' : html`<p class="muted">You already had this VM; here it is again.</p>`}
<section class="card">
  <p>Your PIN</p>
  <p class="big" id="pin">${options.pin}</p>
  <p class="muted">Keep it: you type it when you connect.</p>
</section>
<section class="card">
  <h2>Step 3: connect</h2>
  <ol class="steps">
    <li>Wait about a minute while the VM sets up Chrome Remote Desktop.</li>
    <li>Open <a href="https://remotedesktop.google.com/access" target="_blank" rel="noopener">remotedesktop.google.com/access</a> with the same Google account.</li>
    <li>Click <strong>${options.hostname}</strong> and enter your PIN.</li>
  </ol>
</section>`,
  );
}
