/** Shapes that cross the network between agent, allocator and browser. */

/** `200` answer to `/vm_startup`: only ever a real assignment. */
export interface VmAssignmentResponse {
  status: 'success';
  pin: string;
  command: string;
  /** Identifies this assignment so the agent never runs start-host twice for it. */
  assignment: string;
}

export type ConfigurationOutcome = 'configured' | 'error';

/** `POST /vm_status`: the agent's report of how start-host ended. */
export interface VmStatusReport {
  hostname: string;
  assignment: string;
  outcome: ConfigurationOutcome;
  /** A short, secret-free reason when the outcome is `error`. */
  message?: string;
}

/** EC2 tag that marks a fleet's instances; its value is the fleet (stack) name. */
export const FLEET_TAG = 'lablink:fleet';

export const HOSTNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$/;
export const ASSIGNMENT_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const MAX_STATUS_MESSAGE_LENGTH = 500;
