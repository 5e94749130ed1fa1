import { randomInt } from 'node:crypto';

export const PIN_LENGTH = 6;

/** A fresh PIN per assignment from the crypto RNG; CRD needs at least six digits. */
export function generatePin(): string {
  return randomInt(0, 10 ** PIN_LENGTH)
    .toString()
    .padStart(PIN_LENGTH, '0');
}
