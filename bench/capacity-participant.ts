import { setTimeout as sleep } from 'node:timers/promises';
import { Progress } from '../contract/page-polling';
import { vmPagePollSeconds } from '../contract/page-polling';
import { Answer, Browser } from './capacity-browser';
import { placeInLine, waitInLine } from './capacity-line';
import { CapacityVm, SimulatedGoogle, madeUpCommand } from './capacity-vm';

/** The workshop's clock: `scale` real milliseconds per workshop minute. */
export class WorkshopClock {
  private readonly startedAt = performance.now();

  constructor(readonly minuteMs: number) {}

  /** Workshop minutes since the start. */
  now(): number {
    return (performance.now() - this.startedAt) / this.minuteMs;
  }

  realSeconds(workshopSeconds: number): number {
    return (workshopSeconds * this.minuteMs) / 60_000;
  }

  sleep(workshopSeconds: number, signal: AbortSignal): Promise<void> {
    return sleep(this.realSeconds(workshopSeconds) * 1000, undefined, { signal });
  }

  until(minute: number, signal: AbortSignal): Promise<void> {
    return sleep(Math.max(0, (minute - this.now()) * this.minuteMs), undefined, { signal });
  }
}

export interface Workshop {
  url: URL;
  google: SimulatedGoogle;
  vms: ReadonlyMap<string, CapacityVm>;
  clock: WorkshopClock;
  signal: AbortSignal;
}

type FormAnswer =
  { kind: 'vm'; assignmentId: string } | { kind: 'line'; ticket: string } | { kind: 'refused'; reason: string; retryAfterSeconds?: number };

/** Where the form's answer sends the browser: its VM's page, a place in line, or the form again with why. */
function readFormAnswer(answer: Answer): FormAnswer {
  const vm = /^\/vm\/([0-9a-f-]{36})/.exec(answer.location ?? '')?.[1];
  if (answer.status === 303 && vm) return { kind: 'vm', assignmentId: vm };
  const ticket = answer.status === 303 ? placeInLine(answer.location) : undefined;
  if (ticket) return { kind: 'line', ticket };
  const reason = answer.status === 303 ? new URLSearchParams(answer.location?.split('?')[1]).get('error') : null;
  return { kind: 'refused', reason: reason ?? `HTTP ${answer.status}`, retryAfterSeconds: answer.retryAfterSeconds };
}

export interface ParticipantPlan {
  index: number;
  address: string;
  arriveAtMinute: number;
  connectAfterSeconds: number;
  /** "I'm done" this long after their VM was ready; never when unset. */
  leaveAfterMinutes?: number;
}

export interface ParticipantOutcome {
  submittedAtMinute?: number;
  readyAtMinute?: number;
  leftAtMinute?: number;
  /** Each answer the form gave, by kind (`vm`, `line`, or the refusal's code), and each error a place in line answered (`line HTTP 500`). */
  answers: string[];
  freshCommands: number;
}

async function json<T>(answer: Promise<Answer>): Promise<T> {
  const { status, body } = await answer;
  if (status !== 200) throw new Error(`answered ${status}: ${body.slice(0, 200)}`);
  return JSON.parse(body) as T;
}

/** Follows the VM's status as its page's script does, until ready; returns the VM's name. */
async function untilReady(browser: Browser, assignmentId: string, workshop: Workshop): Promise<string> {
  let id = assignmentId;
  for (;;) {
    const status = await json<{ hostname: string; assignment: string; progress: Progress; error: string | null }>(
      browser.get(`/api/assignment/${id}`, workshop.signal),
    );
    if (status.progress === 'ready') return status.hostname;
    if (status.progress !== 'assigned' && status.progress !== 'configuring')
      throw new Error(`a real participant's VM went ${status.progress}: ${status.error}`);
    id = status.assignment;
    await workshop.clock.sleep(vmPagePollSeconds(status.progress)!, workshop.signal);
  }
}

/** "I'm done": the confirmation page, then its form post, as a browser sends them. */
async function giveBack(browser: Browser, assignmentId: string, signal: AbortSignal): Promise<void> {
  const confirm = await browser.get(`/vm/${assignmentId}/done`, signal);
  if (confirm.status !== 200) throw new Error(`the "I'm done" page answered ${confirm.status}`);
  const done = await browser.post(`/vm/${assignmentId}/done`, {}, signal);
  if (done.status !== 303 || !done.location?.endsWith('?outcome=done'))
    throw new Error(`"I'm done" answered ${done.status} ${done.location}`);
}

/**
 * A real participant: arrives, pastes a command from Google into the form, and does what the
 * answer says: their VM's page, or a place in line (the form again when their turn passed).
 * Once the VM is ready they connect, and some leave.
 */
export async function participate(plan: ParticipantPlan, workshop: Workshop): Promise<ParticipantOutcome> {
  const { clock, signal } = workshop;
  const outcome: ParticipantOutcome = { answers: [], freshCommands: 0 };
  const browser = new Browser(workshop.url, plan.address);
  const email = `participant-${plan.index}@example.com`;
  try {
    await clock.until(plan.arriveAtMinute, signal);
    let command = workshop.google.issue();
    let assignmentId: string | undefined;
    outcome.submittedAtMinute = clock.now();
    while (!assignmentId) {
      const answer = readFormAnswer(await browser.post('/api/request_vm', { email, crd_command: command }, signal));
      outcome.answers.push(answer.kind === 'refused' ? answer.reason : answer.kind);
      if (answer.kind === 'vm') assignmentId = answer.assignmentId;
      else if (answer.kind === 'line') {
        const visit = await waitInLine(browser, answer.ticket, {
          freshCommand: () => (command = workshop.google.issue()),
          sleep: (seconds) => clock.sleep(seconds, signal),
          signal,
        });
        outcome.freshCommands += visit.freshCommands;
        outcome.answers.push(...visit.errors.map((status) => `line HTTP ${status}`));
        assignmentId = visit.assignmentId;
      } else throw new Error(`participant ${plan.index} was refused: ${answer.reason}`);
    }
    await browser.get(`/vm/${assignmentId}`, signal);
    const hostname = await untilReady(browser, assignmentId, workshop);
    outcome.readyAtMinute = clock.now();
    await clock.sleep(plan.connectAfterSeconds, signal);
    await workshop.vms.get(hostname)!.connected();
    if (plan.leaveAfterMinutes !== undefined) {
      await clock.until(outcome.readyAtMinute + plan.leaveAfterMinutes, signal);
      await giveBack(browser, assignmentId, signal);
      outcome.leftAtMinute = clock.now();
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  }
  return outcome;
}

/** A stranger's scripted request: a made-up email and a well-formed code Google never issued; it never comes back. */
export async function fakeRequest(index: number, address: string, workshop: Workshop): Promise<string> {
  const email = `stranger-${index}@example.com`;
  const answer = await new Browser(workshop.url, address).post(
    '/api/request_vm',
    { email, crd_command: madeUpCommand(index) },
    workshop.signal,
  );
  const read = readFormAnswer(answer);
  return read.kind === 'refused' ? read.reason : read.kind;
}
