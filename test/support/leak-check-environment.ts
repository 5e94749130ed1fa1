import { setTimeout as sleep } from 'node:timers/promises';
import { TestEnvironment } from 'jest-environment-node';

/** A closing socket or a last file write may take a moment to finish after the last afterAll. */
const SETTLE_MS = 2_000;

function tally(resources: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const resource of resources) counts.set(resource, (counts.get(resource) ?? 0) + 1);
  return counts;
}

/** What keeps the process alive now and did not before: servers, sockets, child processes, timers not unref'd. */
function leftRunning(before: Map<string, number>): string[] {
  return [...tally(process.getActiveResourcesInfo())]
    .filter(([resource, count]) => count > (before.get(resource) ?? 0))
    .map(([resource, count]) => `${resource} ×${count - (before.get(resource) ?? 0)}`);
}

/**
 * Jest's node environment, where a test file fails when it leaves anything running after its
 * last afterAll. A jest worker runs many files, so such a leftover otherwise only shows at the
 * end of the run, as "a worker process has failed to exit gracefully", naming no file.
 */
export default class LeakCheckEnvironment extends TestEnvironment {
  private before = new Map<string, number>();

  override async setup(): Promise<void> {
    this.before = tally(process.getActiveResourcesInfo());
    await super.setup();
  }

  override async teardown(): Promise<void> {
    await super.teardown();
    const deadline = Date.now() + SETTLE_MS;
    let left = leftRunning(this.before);
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(50);
      left = leftRunning(this.before);
    }
    if (left.length > 0) {
      throw new Error(
        `This test file left ${left.join(', ')} running ${SETTLE_MS / 1000} s after its last afterAll: close it there (a server, pool, client, child process), or unref() a timer that may outlive the test. \`npx jest --detectOpenHandles <file>\` shows where it was created.`,
      );
    }
  }
}
