import { buildSync } from 'esbuild';
import path from 'node:path';

export const AGENT_ENTRY = path.join(__dirname, 'main.ts');

/**
 * Bundles the agent into one dependency-free CommonJS file for Node 20+: the same
 * artifact the EC2 user-data embeds (minified) and the local simulated VMs run.
 * Synchronous because CDK constructs are built synchronously. Build-time only.
 */
export function buildAgentBundle(options: { minify?: boolean } = {}): string {
  const result = buildSync({
    entryPoints: [AGENT_ENTRY],
    write: false,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: options.minify ?? false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}
