import { Context } from 'hono';

export type JsonBodyResult = { ok: true; body: Record<string, unknown> } | { ok: false; status: 400 | 415; message: string };

/** A JSON object body, or a clear reason it is not one. */
export async function readJsonObject(c: Context): Promise<JsonBodyResult> {
  if (!/^application\/json\b/i.test(c.req.header('content-type') ?? '')) {
    return { ok: false, status: 415, message: 'Send the body as JSON with "Content-Type: application/json".' };
  }
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return { ok: false, status: 400, message: 'The body is not valid JSON.' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, status: 400, message: 'The body must be a JSON object.' };
  }
  return { ok: true, body: body as Record<string, unknown> };
}

/** Names the fields a body has beyond the allowed ones, so typos are not silently ignored. */
export function unexpectedFields(body: Record<string, unknown>, allowed: readonly string[]): string[] {
  return Object.keys(body).filter((key) => !allowed.includes(key));
}
