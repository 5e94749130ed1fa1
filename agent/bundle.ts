import { build } from 'esbuild';
import path from 'node:path';

export const AGENT_ENTRY = path.join(__dirname, 'main.ts');

/**
 * Bundles the agent into one dependency-free file for Node 20+: the same artifact the
 * EC2 user-data embeds and the local simulated VMs run. Build-time only.
 */
export async function bundleAgent(outfile: string, options: { minify?: boolean } = {}): Promise<void> {
  await build({
    entryPoints: [AGENT_ENTRY],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: options.minify ?? false,
    legalComments: 'none',
    logLevel: 'silent',
  });
}
