import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Sql } from '../core/sql';
import { countFreeVms } from '../core/vms';
import { crdCommandFor } from './commands';
import { summarize } from './stats';

/** What the participant waits for, end to end: the form posted → the waiting VM's long-poll answered. */
export interface EndToEndOptions {
  /** The system under test, started with the given hold. */
  startServer(holdSeconds: number): Promise<{ url: string; stop(): Promise<void> }>;
  /** As the database's owner, to count connections and retire earlier runs' VMs. */
  sql: Sql;
  fleetToken: string;
  heldVms: number;
  /** Sequential submissions, each waiting for its VM's answer before the next. */
  samples: number;
  /** Pauses with no traffic at all; the submission after each is reported on its own. */
  quietSpells: number;
  quietSeconds: number;
  runId: string;
}

const HOLD_SECONDS = 240;

async function until(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function connectionsByApplication(sql: Sql): Promise<Record<string, number>> {
  const rows = await sql.query<{ name: string; connections: number }>(
    `SELECT application_name AS name, count(*)::int AS connections FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'lablink%' GROUP BY application_name ORDER BY application_name`,
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.connections]));
}

/**
 * Holds `heldVms` real long-polls, then posts the form as a browser does (urlencoded, the 303
 * not followed) once at a time: each sample runs from just before the POST is sent until the
 * assigned VM's poll is answered. A VM answered "nothing yet" polls again, as the agent does.
 */
export async function endToEnd(options: EndToEndOptions) {
  const server = await options.startServer(HOLD_SECONDS);
  const controller = new AbortController();
  // One signal ends every held poll: each fetch listens on it, on purpose.
  setMaxListeners(options.heldVms + 100, controller.signal);
  let vms: Promise<void>[] = [];
  try {
    // VMs of earlier runs are not polling any more: only this run's VMs may be picked.
    await options.sql.query(`UPDATE vms SET alive_until = now() WHERE state = 'waiting'`);
    let answered: ((at: number) => void) | undefined;
    /** Failed polls by what went wrong (each retried at once, as the agent does). */
    const errors = new Map<string, number>();
    const fail = (reason: string) => errors.set(reason, (errors.get(reason) ?? 0) + 1);
    const heldPolls = async () => ((await (await fetch(`${server.url}/api/health`)).json()) as { heldPolls: number }).heldPolls;
    const vm = async (hostname: string) => {
      while (!controller.signal.aborted) {
        try {
          const response = await fetch(`${server.url}/vm_startup`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${options.fleetToken}` },
            body: JSON.stringify({ hostname }),
            signal: controller.signal,
          });
          const at = performance.now();
          await response.arrayBuffer();
          if (response.status === 200) {
            if (answered) answered(at);
            else fail('an answer no submission was waiting for');
            return;
          }
          if (response.status !== 204) fail(`HTTP ${response.status}`);
        } catch (error) {
          if (!controller.signal.aborted) fail(String((error as Error & { cause?: { code?: string } }).cause?.code ?? error));
        }
      }
    };
    vms = Array.from({ length: options.heldVms }, (_, index) => vm(`${options.runId}-vm-${index + 1}`));
    await until(async () => (await heldPolls()) === options.heldVms, `${options.heldVms} held polls`, 120_000);
    await until(async () => (await countFreeVms(options.sql)) === options.heldVms, `${options.heldVms} free VMs`, 120_000);

    let submitted = 0;
    const submit = async (): Promise<{ endToEnd: number; form: number }> => {
      const index = (submitted += 1);
      const vmAnswered = new Promise<number>((resolve) => (answered = resolve));
      const sent = performance.now();
      const response = await fetch(`${server.url}/api/request_vm`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email: `${options.runId}-p${index}@example.com`, crd_command: crdCommandFor(index) }).toString(),
        redirect: 'manual',
      });
      const formAnswered = performance.now();
      await response.arrayBuffer();
      if (response.status !== 303) throw new Error(`submission ${index} got ${response.status}, not the redirect to its VM page`);
      const at = await vmAnswered;
      answered = undefined;
      return { endToEnd: at - sent, form: formAnswered - sent };
    };

    const endToEndMs: number[] = [];
    const formMs: number[] = [];
    for (let sample = 0; sample < options.samples; sample += 1) {
      const result = await submit();
      endToEndMs.push(result.endToEnd);
      formMs.push(result.form);
    }
    const connectionsAfterBurst = await connectionsByApplication(options.sql);
    const afterQuietMs: number[] = [];
    let connectionsAfterQuiet: Record<string, number> = {};
    for (let spell = 0; spell < options.quietSpells; spell += 1) {
      await sleep(options.quietSeconds * 1000);
      // Counted by a connection of the benchmark's own: the server sees no traffic before the submission.
      connectionsAfterQuiet = await connectionsByApplication(options.sql);
      afterQuietMs.push(Math.round((await submit()).endToEnd * 100) / 100);
    }
    const p99Rank = Math.ceil(0.99 * options.samples);
    return {
      scenario: 'endtoend',
      heldVms: options.heldVms,
      endToEndMs: summarize(endToEndMs),
      formAnsweredMs: summarize(formMs),
      p99: `nearest rank: the ${p99Rank}th of ${options.samples} sorted samples (${options.samples - p99Rank} slower ones beyond it)`,
      quietSeconds: options.quietSeconds,
      firstAfterQuietMs: afterQuietMs,
      connectionsAfterBurst,
      connectionsAfterQuiet,
      pollErrors: Object.fromEntries(errors),
    };
  } finally {
    controller.abort();
    await Promise.allSettled(vms);
    await server.stop();
  }
}
