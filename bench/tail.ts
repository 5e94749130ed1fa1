// Where the end-to-end samples' time went, so a slow tail can be explained rather than guessed:
// each sample is cut into stages by the server's own trace, and every process's garbage-
// collection pauses are laid over it. All times are on one clock (CLOCK_MONOTONIC, in ms).
import { Span, pausesInSamples } from './gc-pauses';
import type { ServerTrace } from './server-trace';
import { round, summarize } from './stats';

/** One submission as the benchmark saw it: form sent, its 303 read, the VM's 200 observed. */
export interface Sample {
  sentMs: number;
  formAnsweredMs: number;
  vmAnsweredMs: number;
}

/**
 * The three stages one after the other, adding up to the sample. (The form's 303 and the VM's
 * 200 go out of the same server in either order: the commit's notification can overtake the
 * rest of the form's answer.)
 */
const STAGES = {
  /** The form post's way to the server, until its head is parsed. */
  toServer: (sample: Sample, form: Span) => form.fromMs - sample.sentMs,
  /** In the server: checks, the assignment's durable commit, the notification, the delivery read, the VM's 200 written. */
  inServer: (_sample: Sample, form: Span, vmAnswerMs: number) => vmAnswerMs - form.fromMs,
  /** The 200's way to the VMs' process, until it reads it. */
  toVm: (sample: Sample, _form: Span, vmAnswerMs: number) => sample.vmAnsweredMs - vmAnswerMs,
  /** Not a stage of its own, beside `inServer`: the server's form handling until its 303 is written. */
  formInServer: (_sample: Sample, form: Span) => form.toMs - form.fromMs,
};

type Stages = Record<keyof typeof STAGES, number>;

const overlapMs = (pauses: Span[], span: Span) =>
  pauses.reduce((sum, pause) => sum + Math.max(0, Math.min(pause.toMs, span.toMs) - Math.max(pause.fromMs, span.fromMs)), 0);

/** Each sample cut into stages by the server's trace; `inServer` unset when the trace has no match for it. */
function stage(samples: Sample[], server: ServerTrace) {
  return samples.map((sample, index) => {
    const form = server.formPosts.find((post) => post.fromMs >= sample.sentMs && post.fromMs <= sample.formAnsweredMs);
    const vmAnswerMs = form && server.vmAnswersMs.find((at) => at >= form.fromMs && at <= sample.vmAnsweredMs);
    const span = { fromMs: sample.sentMs, toMs: sample.vmAnsweredMs };
    const stages = Object.fromEntries(
      Object.entries(STAGES).map(([name, stage]) => [name, form && vmAnswerMs !== undefined ? stage(sample, form, vmAnswerMs) : NaN]),
    ) as Stages;
    const inServer = form && vmAnswerMs !== undefined ? { fromMs: form.fromMs, toMs: vmAnswerMs } : undefined;
    return { index, span, totalMs: span.toMs - span.fromMs, stages, inServer };
  });
}

/** One sample for a reader: its stages, each process's GC time inside it, and the server's statements while it served it. */
function describe(sample: ReturnType<typeof stage>[number], server: ServerTrace, pausesByProcess: Record<string, Span[]>) {
  return {
    sample: sample.index + 1,
    totalMs: round(sample.totalMs),
    ...(Object.fromEntries(Object.entries(sample.stages).map(([name, ms]) => [name, round(ms)])) as Stages),
    gcMs: Object.fromEntries(Object.entries(pausesByProcess).map(([name, pauses]) => [name, round(overlapMs(pauses, sample.span))])),
    /** How long each statement took, and its first words. */
    queries: server.queries
      .filter((query) => sample.inServer && query.fromMs >= sample.inServer.fromMs && query.fromMs <= sample.inServer.toMs)
      .map((query) => `${round(query.toMs - query.fromMs)} ms ${query.statement}`),
  };
}

/** A few samples one by one (the submissions after a quiet spell, say), described as the slowest are. */
export function describeSamples(samples: Sample[], server: ServerTrace, pausesByProcess: Record<string, Span[]>) {
  return stage(samples, server).map((sample) => describe(sample, server, pausesByProcess));
}

/**
 * The stages of every sample (their percentiles), the GC pauses of each process that fell into
 * samples, and the `beyondP99` slowest samples one by one: stages and the pause time within.
 */
export function explainTail(samples: Sample[], server: ServerTrace, pausesByProcess: Record<string, Span[]>, beyondP99: number) {
  const staged = stage(samples, server);
  const matched = staged.filter((sample) => sample.inServer);
  const spans = staged.map((sample) => sample.span);
  const slowest = [...staged].sort((a, b) => b.totalMs - a.totalMs).slice(0, beyondP99);
  const described = (sample: (typeof staged)[number]) => describe(sample, server, pausesByProcess);
  return {
    unmatchedSamples: staged.length - matched.length,
    stagesMs: Object.fromEntries(
      Object.keys(STAGES).map((name) => [name, summarize(matched.map((sample) => sample.stages[name as keyof Stages]))]),
    ),
    /** Each statement the server ran while the samples ran, by its first words. */
    statementsMs: Object.fromEntries(
      [...new Set(server.queries.map((query) => query.statement))].map((statement) => [
        statement,
        summarize(server.queries.filter((query) => query.statement === statement).map((query) => query.toMs - query.fromMs)),
      ]),
    ),
    gcPauses: Object.fromEntries(
      Object.entries(pausesByProcess).map(([name, pauses]) => [name, pausesInSamples(pauses, spans, beyondP99)]),
    ),
    /** The first submissions after the server started: any first-use cost shows here. */
    firstFive: staged.slice(0, 5).map(described),
    beyondP99: slowest.map(described),
  };
}
