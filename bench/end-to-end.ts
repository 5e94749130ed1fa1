import { fork } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Sql } from '../store/sql';
import { countFreeVms } from '../store/vms';
import { crdCommandFor } from './commands';
import { Span, hrtimeMs, pausesInSamples, watchGcPauses } from './gc-pauses';
import { HeldVmsCommand, HeldVmsReport } from './held-vms';
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

/** The simulated VMs' process (bench/held-vms.ts), run with this process's loader (tsx). */
function startHeldVms() {
  const child = fork(path.join(__dirname, 'held-vms.ts'), { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const waiting = new Map<string, (report: HeldVmsReport) => void>();
  let onAnswer: (at: bigint) => void = () => undefined;
  child.on('message', (report: HeldVmsReport) => {
    if (report.kind === 'answered') onAnswer(BigInt(report.at));
    else waiting.get(report.kind)?.(report);
  });
  const send = (command: HeldVmsCommand) => child.send(command);
  const next = (kind: HeldVmsReport['kind']) => new Promise<HeldVmsReport>((resolve) => waiting.set(kind, resolve));
  return {
    send,
    onAnswer: (listener: (at: bigint) => void) => (onAnswer = listener),
    /** The child's reading must fall between the two of this process around it, or the samples would mix two clocks. */
    async checkSharedClock(): Promise<void> {
      const asked = process.hrtime.bigint();
      const clock = next('clock');
      send({ kind: 'clock' });
      const childAt = BigInt(((await clock) as { at: string }).at);
      const heard = process.hrtime.bigint();
      if (childAt < asked || childAt > heard)
        throw new Error(`the VMs' process reads another clock: ${childAt} is not between ${asked} and ${heard}`);
    },
    /** Ends every held poll; the failed polls by reason. */
    async stop(): Promise<Record<string, number>> {
      if (!child.connected) return {};
      const stopped = next('stopped');
      send({ kind: 'stop' });
      const report = await Promise.race([stopped, exited]);
      await exited;
      return (report as { pollErrors?: Record<string, number> } | undefined)?.pollErrors ?? {};
    },
  };
}

/**
 * Holds `heldVms` real long-polls in a child process, then posts the form as a browser does
 * (urlencoded, the 303 not followed) once at a time from this one: each sample runs from just
 * before the POST is sent until the assigned VM's poll is answered, as the child observes it.
 * Both read CLOCK_MONOTONIC (`process.hrtime.bigint()`), one clock for the whole machine;
 * a round trip over the IPC channel checks that before the first sample.
 */
export async function endToEnd(options: EndToEndOptions) {
  const server = await options.startServer(HOLD_SECONDS);
  const vms = startHeldVms();
  try {
    // VMs of earlier runs are not polling any more: only this run's VMs may be picked.
    await options.sql.query(`UPDATE vms SET alive_until = now() WHERE state = 'waiting'`);
    await vms.checkSharedClock();

    let answered: ((at: bigint) => void) | undefined;
    let unexpectedAnswers = 0;
    vms.onAnswer((at) => {
      if (answered) answered(at);
      else unexpectedAnswers += 1;
    });
    const heldPolls = async () => ((await (await fetch(`${server.url}/api/health`)).json()) as { heldPolls: number }).heldPolls;
    vms.send({ kind: 'start', url: server.url, fleetToken: options.fleetToken, heldVms: options.heldVms, runId: options.runId });
    await until(async () => (await heldPolls()) === options.heldVms, `${options.heldVms} held polls`, 120_000);
    await until(async () => (await countFreeVms(options.sql)) === options.heldVms, `${options.heldVms} free VMs`, 120_000);

    let submitted = 0;
    /** The whole sample (sent → VM answered), and the form's half (sent → its 303). */
    const submit = async (): Promise<{ endToEnd: Span; form: Span }> => {
      const index = (submitted += 1);
      const vmAnswered = new Promise<bigint>((resolve) => (answered = resolve));
      const sent = process.hrtime.bigint();
      const response = await fetch(`${server.url}/api/request_vm`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email: `${options.runId}-p${index}@example.com`, crd_command: crdCommandFor(index) }).toString(),
        redirect: 'manual',
      });
      const formAnswered = process.hrtime.bigint();
      await response.arrayBuffer();
      if (response.status !== 303) throw new Error(`submission ${index} got ${response.status}, not the redirect to its VM page`);
      const at = await vmAnswered;
      answered = undefined;
      return { endToEnd: { fromMs: hrtimeMs(sent), toMs: hrtimeMs(at) }, form: { fromMs: hrtimeMs(sent), toMs: hrtimeMs(formAnswered) } };
    };

    const endToEnd: Span[] = [];
    const form: Span[] = [];
    // This process's own pauses would land in the samples: counted, to show whether they do.
    const gcs = watchGcPauses();
    for (let sample = 0; sample < options.samples; sample += 1) {
      const result = await submit();
      endToEnd.push(result.endToEnd);
      form.push(result.form);
    }
    const gcPauses = gcs.stop();
    const p99Rank = Math.ceil(0.99 * options.samples);
    const lengths = (spans: Span[]) => spans.map((span) => span.toMs - span.fromMs);
    const connectionsAfterBurst = await connectionsByApplication(options.sql);
    const afterQuietMs: number[] = [];
    let connectionsAfterQuiet: Record<string, number> = {};
    for (let spell = 0; spell < options.quietSpells; spell += 1) {
      await sleep(options.quietSeconds * 1000);
      // Counted by a connection of the benchmark's own: the server sees no traffic before the submission.
      connectionsAfterQuiet = await connectionsByApplication(options.sql);
      const { endToEnd: sample } = await submit();
      afterQuietMs.push(Math.round((sample.toMs - sample.fromMs) * 100) / 100);
    }
    return {
      scenario: 'endtoend',
      heldVms: options.heldVms,
      endToEndMs: summarize(lengths(endToEnd)),
      formAnsweredMs: summarize(lengths(form)),
      measuringProcessGc: pausesInSamples(gcPauses, endToEnd, options.samples - p99Rank),
      p99: `nearest rank: the ${p99Rank}th of ${options.samples} sorted samples (${options.samples - p99Rank} slower ones beyond it)`,
      quietSeconds: options.quietSeconds,
      firstAfterQuietMs: afterQuietMs,
      connectionsAfterBurst,
      connectionsAfterQuiet,
      pollErrors: await vms.stop(),
      unexpectedAnswers,
    };
  } finally {
    await vms.stop();
    await server.stop();
  }
}
