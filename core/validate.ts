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
export function checkAll<S extends v.GenericSchema>(
  schema: S,
  value: unknown,
): { ok: true; value: v.InferOutput<S> } | { ok: false; messages: string[] } {
  const result = v.safeParse(schema, value, { abortEarly: false });
  return result.success
    ? { ok: true, value: result.output }
    : { ok: false, messages: [...new Set(result.issues.map((issue) => issue.message))] };
}

/**
 * An object of `entries`' fields (others are dropped). A missing field gets the message its
 * schema gives `undefined`, as a wrong value does, instead of valibot's generic one.
 */
export function fieldsObject<E extends v.ObjectEntries>(entries: E) {
  return v.object(entries, (issue) => {
    const key = issue.path?.[0]?.key;
    const missing = typeof key === 'string' && Object.hasOwn(entries, key) ? check(entries[key], undefined) : undefined;
    return missing && !missing.ok ? missing.message : issue.message;
  });
}

type FieldsMessages = { notObject: string; unexpected: (fields: string[]) => string };
const BODY_MESSAGES: FieldsMessages = {
  notObject: 'The body must be a JSON object.',
  unexpected: (fields) => `Unexpected field(s): ${fields.join(', ')}.`,
};

/** A `fieldsObject` with exactly `entries`' fields: unknown fields are all named at once, before any field is checked, so a typo is not silently ignored. */
export function exactObject<E extends v.ObjectEntries>(entries: E, messages: FieldsMessages = BODY_MESSAGES) {
  const allowed = Object.keys(entries);
  return v.pipe(
    v.custom<Record<string, unknown>>((input) => typeof input === 'object' && input !== null && !Array.isArray(input), messages.notObject),
    v.check(
      (input) => unexpectedFields(input, allowed).length === 0,
      (issue) => messages.unexpected(unexpectedFields(issue.input, allowed)),
    ),
    fieldsObject(entries),
  );
}

/** Names the fields a body has beyond the allowed ones, so typos are not silently ignored. */
function unexpectedFields(body: Record<string, unknown>, allowed: readonly string[]): string[] {
  return Object.keys(body).filter((key) => !allowed.includes(key));
}
