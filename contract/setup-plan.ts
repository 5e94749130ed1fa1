import { readFileSync } from 'node:fs';

/** What the workshop asks of each VM before it joins the pool: the JSON file LABLINK_SETUP names. */
export interface SetupPlan {
  /** A shell script, run by bash as the agent's user (root on a VM). */
  script?: string;
  /** A command that must succeed as the desktop user (`bash -lc`). */
  check?: string;
  /** A git URL cloned into the desktop user's home (locally: into workDir). */
  repository?: string;
  /** A branch, tag or commit to check out after cloning. */
  repositoryRef?: string;
  /** An image pulled with Podman as the desktop user, with a desktop launcher that starts it. */
  containerImage?: string;
  /** Where the script runs, and without a desktop user where the repository goes; unset: the agent's state folder. */
  workDir?: string;
}

const FIELDS: readonly (keyof SetupPlan)[] = ['script', 'check', 'repository', 'repositoryRef', 'containerImage', 'workDir'];

/** The folder a repository is cloned into: its URL's last part without `.git`. */
export function repositoryFolder(url: string): string {
  return url
    .replace(/\/+$/, '')
    .split(/[/:]/)
    .pop()!
    .replace(/\.git$/, '');
}

/** Reads the plan once at start; a file that is not a plan stops the agent with a clear message. */
export function readSetupPlan(file: string): SetupPlan {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`LABLINK_SETUP: cannot read ${file} as JSON (${(error as Error).message}).`, { cause: error });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error(`LABLINK_SETUP: ${file} must hold a JSON object.`);
  const plan = parsed as Record<string, unknown>;
  const unknown = Object.keys(plan).filter((key) => !FIELDS.includes(key as keyof SetupPlan));
  if (unknown.length > 0) throw new Error(`LABLINK_SETUP: unexpected field(s) ${unknown.join(', ')}; allowed: ${FIELDS.join(', ')}.`);
  for (const field of FIELDS) {
    if (plan[field] !== undefined && (typeof plan[field] !== 'string' || plan[field] === ''))
      throw new Error(`LABLINK_SETUP: "${field}" must be a non-empty string.`);
  }
  for (const field of ['script', 'workDir'] as const) {
    if (plan[field] !== undefined && !(plan[field] as string).startsWith('/'))
      throw new Error(`LABLINK_SETUP: "${field}" must be an absolute path.`);
  }
  if (plan.repositoryRef !== undefined && plan.repository === undefined)
    throw new Error('LABLINK_SETUP: "repositoryRef" needs "repository".');
  if (plan.repository !== undefined && !/^[\w.-]+$/.test(repositoryFolder(plan.repository as string))) {
    throw new Error('LABLINK_SETUP: "repository" must end in a folder name (letters, digits, dots, dashes).');
  }
  return plan as SetupPlan;
}

/** Written in the state folder after each run: the boot script waits for it, and a passed run is not repeated. */
export const SETUP_RESULT_FILE = 'setup-result.json';
