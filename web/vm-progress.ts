import { SETUP_FAILURE_PREFIX } from '../contract/wire';

/** How far a VM has got, in the instructor's words: the boot, the workshop's setup, then ready. */
export type ProgressPhase = 'booting' | 'installing desktop' | 'setup script' | 'check' | 'ready' | 'resetting' | 'failed';

// The boot script's steps (lib/user-data.ts) up to the agent's start, and the agent's setup steps (agent/setup.ts).
const DESKTOP_STEPS = [
  'install-desktop',
  'block-metadata',
  'install-crd',
  'install-node',
  'create-desktop-user',
  'install-agent',
  'claim-name',
  'install-setup',
  'start-agent',
  'register',
  'setup',
];
const SETUP_STEPS = ['setup-repository', 'setup-container', 'setup-script'];

/** The phase a VM's last reported step belongs to; an unknown step (a newer agent's) counts as ready. */
export function progressPhase(step: string | null): ProgressPhase {
  if (step === null || step === 'registering' || step === 'start' || step === 'set-hostname') return 'booting';
  if (DESKTOP_STEPS.includes(step)) return 'installing desktop';
  if (SETUP_STEPS.includes(step)) return 'setup script';
  if (step === 'setup-check') return 'check';
  if (step === 'failed' || step === 'setup-failed') return 'failed';
  if (step.startsWith('reset-')) return 'resetting';
  return 'ready';
}

/** Whether a VM's failure is its workshop setup's, which a re-run of the setup may fix. */
export function setupFailed(failure: string | null): boolean {
  return failure?.startsWith(SETUP_FAILURE_PREFIX) ?? false;
}
