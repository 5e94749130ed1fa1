import { CrdCommand, parseCrdCommand } from './crd-command';
import { parseEmail } from './email';

type RequestField = 'email' | 'crd_command';

/** Every field's problem at once, so a participant fixes them in one go. */
export interface InvalidRequest {
  errors: Partial<Record<RequestField, string>>;
  /** A likely meant email, offered next to the field. */
  emailSuggestion?: string;
}

export interface VmRequestInput {
  email: unknown;
  crdCommand: unknown;
  /** The email exactly as typed, when the participant confirmed it despite a suggested correction. */
  emailConfirmed?: unknown;
  /** The retry token the browser holds from its last submission (form field or cookie), if any. */
  retryToken?: unknown;
}

type ValidRequest = { ok: true; email: string; command: CrdCommand } | ({ ok: false } & InvalidRequest);

/** Checks every field without touching the database. */
export function validateVmRequest(input: VmRequestInput): ValidRequest {
  const email = parseEmail(input.email, input.emailConfirmed);
  const command = parseCrdCommand(input.crdCommand);
  if (email.ok && command.ok) return { ok: true, email: email.email, command: command.command };
  return {
    ok: false,
    errors: { ...(email.ok ? {} : { email: email.message }), ...(command.ok ? {} : { crd_command: command.message }) },
    ...(!email.ok && email.suggestion ? { emailSuggestion: email.suggestion } : {}),
  };
}
