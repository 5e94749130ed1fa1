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
  // PostgreSQL text cannot hold NUL: refused here, it is a clear 400 instead of a failed insert.
  if (holdsNul(body)) return { ok: false, status: 400, message: 'Text in the body must not contain NUL characters (\\u0000).' };
  return { ok: true, body: body as Record<string, unknown> };
}

function holdsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (typeof value !== 'object' || value === null) return false;
  return Object.entries(value).some(([key, inner]) => key.includes('\u0000') || holdsNul(inner));
}
