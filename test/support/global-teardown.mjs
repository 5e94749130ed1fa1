import { orphansOfThisCheckout } from './orphans.mjs';

export default async function globalTeardown() {
  await globalThis.__LABLINK_POSTGRES__?.stop();
  // A process a test left running would go on after the run (and after CI): ended here, and the run fails.
  const before = globalThis.__LABLINK_ORPHANS_BEFORE__ ?? new Set();
  const left = orphansOfThisCheckout().filter((orphan) => !before.has(orphan.pid));
  for (const orphan of left) process.kill(orphan.pid, 'SIGKILL');
  if (left.length > 0)
    throw new Error(`the tests left ${left.length} process(es) running:\n${left.map((o) => `${o.pid} ${o.args}`).join('\n')}`);
}
