import { fork } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Sql } from '../store/sql';
import { countFreeVms } from '../store/vms';
import { crdCommandFor } from './commands';
import { Span, hrtimeMs, watchGcPauses } from './gc-pauses';
import { HeldVmsCommand, HeldVmsReport } from './held-vms';
import type { ServerTrace } from './server-trace';
import { round, summarize } from './stats';
import { Sample, describeSamples, explainTail } from './tail';

/** What the participant waits for, end to end: the form posted → the waiting VM's long-poll answered. */
export interface EndToEndOptions {
  /** The system under test, started with the given hold. */
  startServer(holdSeconds: number): Promise<{ url: string; trace(): Promise<ServerTrace>; stop(): Promise<void> }>;
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
    /** Ends every held poll; the failed polls by reason, and the process's GC pauses. */
    async stop(): Promise<{ pollErrors: Record<string, number>; gcPauses: Span[] }> {
      const stopped = next('stopped');
      if (child.connected) send({ kind: 'stop' });
      const report = (await Promise.race([stopped, exited])) as Partial<Extract<HeldVmsReport, { kind: 'stopped' }>> | undefined;
      await exited;
      return { pollErrors: report?.pollErrors ?? {}, gcPauses: report?.gcPauses ?? [] };
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
    const submit = async (): Promise<Sample> => {
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
      return { sentMs: hrtimeMs(sent), formAnsweredMs: hrtimeMs(formAnswered), vmAnsweredMs: hrtimeMs(at) };
    };

    const samples: Sample[] = [];
    // Every process's pauses could land in the samples: recorded, to show whether they do.
    const gcs = watchGcPauses();
    await server.trace();
    for (let sample = 0; sample < options.samples; sample += 1) samples.push(await submit());
    const measuringGcPauses = gcs.stop();
    const serverTrace = await server.trace();
    const p99Rank = Math.ceil(0.99 * options.samples);
    const connectionsAfterBurst = await connectionsByApplication(options.sql);
    const afterQuiet: Sample[] = [];
    let connectionsAfterQuiet: Record<string, number> = {};
    for (let spell = 0; spell < options.quietSpells; spell += 1) {
      await sleep(options.quietSeconds * 1000);
      // Counted by a connection of the benchmark's own: the server sees no traffic before the submission.
      connectionsAfterQuiet = await connectionsByApplication(options.sql);
      afterQuiet.push(await submit());
    }
    const quietTrace = await server.trace();
    const { pollErrors, gcPauses: vmsGcPauses } = await vms.stop();
    return {
      scenario: 'endtoend',
      heldVms: options.heldVms,
      endToEndMs: summarize(samples.map((sample) => sample.vmAnsweredMs - sample.sentMs)),
      formAnsweredMs: summarize(samples.map((sample) => sample.formAnsweredMs - sample.sentMs)),
      p99: `nearest rank: the ${p99Rank}th of ${options.samples} sorted samples (${options.samples - p99Rank} slower ones beyond it)`,
      quietSeconds: options.quietSeconds,
      firstAfterQuietMs: afterQuiet.map((sample) => round(sample.vmAnsweredMs - sample.sentMs)),
      connectionsAfterBurst,
      connectionsAfterQuiet,
      pollErrors,
      unexpectedAnswers,
      tail: explainTail(
        samples,
        serverTrace,
        { server: serverTrace.gcPauses, measuring: measuringGcPauses, vms: vmsGcPauses },
        options.samples - p99Rank,
      ),
      /** The submissions after the quiet spells, one by one: what a quiet spell still costs shows here. */
      afterQuiet: describeSamples(afterQuiet, quietTrace, { server: quietTrace.gcPauses, vms: vmsGcPauses }),
    };
  } finally {
    await vms.stop();
    await server.stop();
  }
}
