import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LabLinkConfig, readConfig } from './lablink-config';
import { REPO_ROOT } from './node-function';

/** The stack's name unless `-c stackName=…` says otherwise (bin/app.ts). */
export const DEFAULT_STACK_NAME = 'LabLink';

/** The context cdk deploy would see: cdk.json's, then the -c flags (key=value). */
export function contextFromFlags(flags: string[]): Record<string, unknown> {
  const context: Record<string, unknown> = { ...JSON.parse(readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')).context };
  for (const flag of flags) {
    const separator = flag.indexOf('=');
    if (separator < 1) throw new Error(`-c expects key=value (got ${JSON.stringify(flag)}).`);
    context[flag.slice(0, separator)] = flag.slice(separator + 1);
  }
  return context;
}

export function stackNameOf(context: Record<string, unknown>): string {
  return typeof context.stackName === 'string' && context.stackName !== '' ? context.stackName : DEFAULT_STACK_NAME;
}

/** The deployment the -c flags describe: its validated config and its stack's name; throws with a clear message. */
export function deploymentFromFlags(flags: string[]): { config: LabLinkConfig; stackName: string } {
  const context = contextFromFlags(flags);
  return { config: readConfig((key) => context[key]), stackName: stackNameOf(context) };
}
