import { Context } from 'hono';
import * as v from 'valibot';
import { check, exactObject } from '../core/validate';

/** A field that is not text (a number in JSON, a file in a multipart form) counts as not given: the field's own check then asks for it. */
const text = v.fallback(v.optional(v.string()), undefined);

/**
 * The fields of `POST /api/request_vm`; what each holds is judged later (core/email.ts,
 * core/crd-command.ts, the access code). `retry_token` stays as sent: core ignores a malformed
 * one, and a sent one, even malformed, must not let the browser's cookie stand in for it.
 */
const REQUEST_FORM = v.pipe(
  exactObject(
    { email: text, email_confirmed: text, crd_command: text, access_code: text, retry_token: v.optional(v.unknown()) },
    // A public form: at most five unknown names are echoed back, so the answer stays short.
    { notObject: 'The body must be a JSON object.', unexpected: (fields) => `Unexpected field(s): ${fields.slice(0, 5).join(', ')}.` },
  ),
  v.transform((form) => ({
    email: form.email,
    emailConfirmed: form.email_confirmed,
    crdCommand: form.crd_command,
    accessCode: form.access_code,
    retryToken: form.retry_token,
  })),
);

export type RequestForm = v.InferOutput<typeof REQUEST_FORM>;

/** The form as a browser posts it, or the same fields as JSON; anything else is refused before its fields are read. */
export async function readRequestForm(
  c: Context,
): Promise<{ ok: true; form: RequestForm } | { ok: false; status: 400 | 415; message: string }> {
  const type = c.req.header('content-type') ?? '';
  let body: unknown;
  try {
    if (/^application\/json\b/i.test(type)) body = await c.req.json();
    // What a browser posts, read once: the text straight into its fields (a repeated name keeps its last value).
    else if (/^application\/x-www-form-urlencoded\b/i.test(type)) body = Object.fromEntries(new URLSearchParams(await c.req.text()));
    else if (/^multipart\/form-data\b/i.test(type)) body = await c.req.parseBody();
    else return { ok: false, status: 415, message: 'Send the form as application/x-www-form-urlencoded, multipart/form-data or JSON.' };
  } catch {
    return { ok: false, status: 400, message: 'The request body could not be read.' };
  }
  const checked = check(REQUEST_FORM, body);
  return checked.ok ? { ok: true, form: checked.value } : { ok: false, status: 400, message: checked.message };
}
