import * as v from 'valibot';
import { HOSTNAME_PATTERN, VM_LOG_LEVELS } from '../core/wire';
import { ADMIN_ACTIONS, FLEET_ACTIONS } from './admin-page';

/** `?level=` may be empty: it means every level, as if it were not given. */
export const LOG_LEVEL = v.optional(v.picklist(VM_LOG_LEVELS, 'The level must be "error", "warn" or "info".'));

/** A name some VM could have; any other is answered as an unknown VM. */
export const HOSTNAME = v.pipe(v.string(), v.regex(HOSTNAME_PATTERN));

/** A listed action only: a name every object has (such as "constructor") is no action. */
export const VM_ACTION_PARAMS = v.object({ hostname: HOSTNAME, action: v.picklist(ADMIN_ACTIONS) });
export const FLEET_ACTION = v.picklist(FLEET_ACTIONS);
