// The simulated VMs of the end-to-end scenario, in a process of their own: thousands of held
// long-polls fill a heap, and its garbage collections must not pause the process that posts the
// form and reads the clock. Started by bench/end-to-end.ts over an IPC channel.
import http from 'node:http';
import { Span, watchGcPauses } from './gc-pauses';

/** From the benchmark: which VMs to run; then `stop`. */
export type HeldVmsCommand =
  { kind: 'start'; url: string; fleetToken: string; heldVms: number; runId: string } | { kind: 'clock' } | { kind: 'stop' };

/**
 * To the benchmark. Times are `process.hrtime.bigint()` in nanoseconds, as decimal strings:
 * CLOCK_MONOTONIC, one clock for every process on the machine, so they compare with the
 * benchmark's own readings without an offset.
 */
export type HeldVmsReport =
  | { kind: 'answered'; hostname: string; at: string }
  | { kind: 'clock'; at: string }
  | { kind: 'stopped'; pollErrors: Record<string, number>; gcPauses: Span[] };

const send = (report: HeldVmsReport) => process.send!(report);
/**
 * Node's own HTTP client, not fetch: thousands of held fetches make a heap twice as large, and
 * its collections (marking on helper threads too) take CPU from the system under test.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
let stopping = false;
/** Failed polls by what went wrong (each retried at once, as the agent does). */
const errors = new Map<string, number>();
const fail = (reason: string) => errors.set(reason, (errors.get(reason) ?? 0) + 1);
let vms: Promise<void>[] = [];
let gc: ReturnType<typeof watchGcPauses> | undefined;

/** One poll: its status, and when its answer's head arrived. */
function poll(url: string, fleetToken: string, hostname: string): Promise<{ status: number; at: bigint }> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${fleetToken}` };
    const request = http.request(`${url}/vm_startup`, { method: 'POST', agent, headers }, (response) => {
      const at = process.hrtime.bigint();
      response.once('end', () => resolve({ status: response.statusCode ?? 0, at }));
      response.once('error', reject);
      response.resume();
    });
    request.once('error', reject);
    request.end(JSON.stringify({ hostname }));
  });
}

/** A VM answered "nothing yet" polls again, as the agent does; its answer's arrival is timed here, where it is observed. */
async function vm(url: string, fleetToken: string, hostname: string): Promise<void> {
  while (!stopping) {
    try {
      const { status, at } = await poll(url, fleetToken, hostname);
      if (status === 200) {
        send({ kind: 'answered', hostname, at: String(at) });
        return;
      }
      if (status !== 204) fail(`HTTP ${status}`);
    } catch (error) {
      if (!stopping) fail((error as NodeJS.ErrnoException).code ?? String(error));
    }
  }
}

process.on('message', (command: HeldVmsCommand) => {
  if (command.kind === 'clock') send({ kind: 'clock', at: String(process.hrtime.bigint()) });
  else if (command.kind === 'start') {
    gc = watchGcPauses();
    vms = Array.from({ length: command.heldVms }, (_, index) => vm(command.url, command.fleetToken, `${command.runId}-vm-${index + 1}`));
  } else {
    stopping = true;
    agent.destroy();
    void Promise.allSettled(vms).then(() => {
      send({ kind: 'stopped', pollErrors: Object.fromEntries(errors), gcPauses: gc?.stop() ?? [] });
      process.disconnect();
    });
  }
});
