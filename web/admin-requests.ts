import * as v from 'valibot';
import { HOSTNAME_PATTERN, VM_LOG_LEVELS } from '../contract/wire';
import { exactObject } from '../core/validate';
import { ADMIN_ACTIONS, FLEET_ACTIONS } from './admin-page';

/** `?level=` may be empty: it means every level, as if it were not given. */
export const LOG_LEVEL = v.optional(v.picklist(VM_LOG_LEVELS, 'The level must be "error", "warn" or "info".'));

/** A name some VM could have; any other is answered as an unknown VM. */
export const HOSTNAME = v.pipe(v.string(), v.regex(HOSTNAME_PATTERN));

/** A listed action only: a name every object has (such as "constructor") is no action. */
export const VM_ACTION_PARAMS = v.object({ hostname: HOSTNAME, action: v.picklist(ADMIN_ACTIONS) });
export const FLEET_ACTION = v.picklist(FLEET_ACTIONS);

const shortText = (field: string, max: number) =>
  v.pipe(v.string(`${field} must be text.`), v.maxLength(max, `${field} must be at most ${max} characters.`));

/** `POST /api/go-no-go`: the lines of a check, each PASS, WARN or FAIL. */
export const CHECK_RESULT = exactObject({
  lines: v.pipe(
    v.array(
      exactObject({
        status: v.picklist(['PASS', 'WARN', 'FAIL'], "Each line's status must be PASS, WARN or FAIL."),
        name: shortText("A line's name", 100),
        message: shortText("A line's message", 1000),
        action: v.optional(shortText("A line's action", 1000)),
      }),
      'lines must be a list of lines.',
    ),
    v.minLength(1, 'A check has at least one line.'),
    v.maxLength(500, 'A check has at most 500 lines.'),
  ),
});
