import * as v from 'valibot';

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * Checks a value against a valibot schema. The schemas carry the messages people read, so a
 * refusal says what is wrong in words a user can act on: the first issue's message is the answer.
 */
export function check<S extends v.GenericSchema>(schema: S, value: unknown): Checked<v.InferOutput<S>> {
  const result = v.safeParse(schema, value);
  return result.success ? { ok: true, value: result.output } : { ok: false, message: result.issues[0].message };
}

/** Every issue's message, for checks that list all that is wrong at once. */
export function checkAll<S extends v.GenericSchema>(schema: S, value: unknown): { ok: true; value: v.InferOutput<S> } | { ok: false; messages: string[] } {
  const result = v.safeParse(schema, value, { abortEarly: false });
  return result.success ? { ok: true, value: result.output } : { ok: false, messages: [...new Set(result.issues.map((issue) => issue.message))] };
}
