import { setMaxListeners } from 'node:events';
import { DEFAULT_ADDRESS_LIMIT } from '../store/client-limits';
import { DEFAULT_IDLE_RELEASE } from '../core/idle-release';
import { DEFAULT_LINE_POLICY } from '../store/waiting-line';
import { Sql } from '../store/sql';
import { countFreeVms } from '../store/vms';
import { CapacityVm, SimulatedGoogle, codeOf, madeUpCommand } from './capacity-vm';
import { ParticipantOutcome, WorkshopClock, Workshop, fakeRequest, participate } from './capacity-participant';
import { randomSource } from './open-pages';
import type { BenchStackPolicies } from './server';
import { summarize } from './stats';

/** A workshop on a compressed clock; every duration is in workshop time. */
export interface CapacityScenario {
  participants: number;
  vms: number;
  arrivalMinutes: number;
  /** Every third participant gives their VM back ("I'm done") this long after it was ready. */
  leaveAfterMinutes: number;
  fakeAddresses: number;
  fakesPerAddress: number;
  /** Each stranger's script sends one request this often. */
  fakeEveryMinutes: number;
  /** Real participants share client addresses in groups of this size (rooms, homes, NATs). */
  participantsPerAddress: number;
  workshopMinutes: number;
  /** Real milliseconds per workshop minute. */
  minuteMs: number;
  seed: number;
}

export const DEFAULT_CAPACITY_SCENARIO: CapacityScenario = {
  participants: 300,
  vms: 200,
  arrivalMinutes: 20,
  leaveAfterMinutes: 60,
  fakeAddresses: 5,
  fakesPerAddress: 10,
  fakeEveryMinutes: 1,
  participantsPerAddress: 30,
  workshopMinutes: 180,
  minuteMs: 1000,
  seed: 1,
};

/** start-host (Google's round trip) and a reset (wipe, setup again), in workshop seconds. */
const START_HOST_SECONDS = 10;
const RESET_SECONDS = 30;
/** The allocator's idle sweep runs every 15 s in production. */
const SWEEP_SECONDS = 15;
const HOLD_SECONDS = 40;

export interface CapacityOptions {
  startServer(holdSeconds: number, policies: BenchStackPolicies): Promise<{ url: string; stop(): Promise<void> }>;
  /** As the database's owner, to retire earlier runs' VMs. */
  sql: Sql;
  fleetToken: string;
  scenario: CapacityScenario;
  runId: string;
}

/** The production policies, every duration scaled to the compressed clock (whole real seconds, at least 1). */
function scaledPolicies(clock: WorkshopClock): BenchStackPolicies {
  const real = (seconds: number | null) => (seconds === null ? null : Math.max(1, Math.round(clock.realSeconds(seconds))));
  return {
    idleRelease: {
      failedAfterSeconds: real(DEFAULT_IDLE_RELEASE.failedAfterSeconds),
      unconnectedAfterSeconds: real(DEFAULT_IDLE_RELEASE.unconnectedAfterSeconds),
      warnBeforeSeconds: real(DEFAULT_IDLE_RELEASE.warnBeforeSeconds)!,
    },
    addressLimit: { vms: DEFAULT_ADDRESS_LIMIT.vms, windowSeconds: real(DEFAULT_ADDRESS_LIMIT.windowSeconds)! },
    idleSweepIntervalMs: clock.realSeconds(SWEEP_SECONDS) * 1000,
    line: { turnSeconds: real(DEFAULT_LINE_POLICY.turnSeconds)!, freshCommandSeconds: real(DEFAULT_LINE_POLICY.freshCommandSeconds)! },
  };
}

/** How long each stranger's code held a VM: from its delivery to the VM's reset order, in workshop minutes. */
class FakeHoldings {
  private readonly current = new Map<string, { code: string; from: number }>();
  readonly held: { hostname: string; from: number; until?: number }[] = [];

  constructor(
    private readonly fakeCodes: ReadonlySet<string>,
    private readonly clock: WorkshopClock,
  ) {}

  assigned(hostname: string, command: string): void {
    const code = codeOf(command);
    this.current.set(hostname, { code, from: this.clock.now() });
  }

  reset(hostname: string): void {
    const holding = this.current.get(hostname);
    this.current.delete(hostname);
    if (holding && this.fakeCodes.has(holding.code)) this.held.push({ hostname, from: holding.from, until: this.clock.now() });
  }

  /** Those still held at the end count until then. */
  report(endMinute: number) {
    const open = [...this.current]
      .filter(([, holding]) => this.fakeCodes.has(holding.code))
      .map(([hostname, holding]) => ({ hostname, from: holding.from, until: undefined }));
    const all = [...this.held, ...open];
    const minutes = all.map((holding) => (holding.until ?? endMinute) - holding.from);
    const events = all.flatMap((holding) => [
      { at: holding.from, change: 1 },
      { at: holding.until ?? endMinute, change: -1 },
    ]);
    let atOnce = 0;
    let peak = 0;
    for (const event of events.sort((a, b) => a.at - b.at || a.change - b.change)) peak = Math.max(peak, (atOnce += event.change));
    return {
      holdings: all.length,
      distinctVms: new Set(all.map((holding) => holding.hostname)).size,
      stillHeldAtEnd: open.length,
      vmMinutes: Math.round(minutes.reduce((sum, value) => sum + value, 0)),
      holdMinutes: summarize(minutes),
      peakHeldAtOnce: peak,
    };
  }
}

/** Every third participant leaves once their hour is up. */
const leaves = (index: number) => index % 3 === 2;

function count(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

/**
 * Issue 24's workshop against the real local stack: `vms` simulated VMs (real long-polls), real
 * participants arriving evenly over `arrivalMinutes` through the form, strangers' scripts sending
 * made-up codes from their own addresses, on a clock where a workshop minute lasts `minuteMs`.
 */
export async function capacity(options: CapacityOptions) {
  const { scenario } = options;
  const setupClock = new WorkshopClock(scenario.minuteMs);
  const server = await options.startServer(HOLD_SECONDS, scaledPolicies(setupClock));
  const controller = new AbortController();
  setMaxListeners(scenario.vms + scenario.participants * 2 + 100, controller.signal);
  const google = new SimulatedGoogle();
  const fakeCodes = new Set(
    Array.from({ length: scenario.fakeAddresses * scenario.fakesPerAddress }, (_, index) => codeOf(madeUpCommand(index))),
  );
  let runs: Promise<void>[] = [];
  try {
    // VMs of earlier runs are not polling any more: only this run's VMs may be picked.
    await options.sql.query(`UPDATE vms SET alive_until = now() WHERE state = 'waiting'`);
    const vms = new Map<string, CapacityVm>();
    // Set once the workshop clock starts: the VMs register before it, and nothing is held until then.
    // eslint-disable-next-line prefer-const
    let holdings: FakeHoldings | undefined;
    for (let index = 1; index <= scenario.vms; index += 1) {
      const hostname = `${options.runId}-vm-${index}`;
      vms.set(
        hostname,
        new CapacityVm({
          url: server.url,
          fleetToken: options.fleetToken,
          hostname,
          google,
          startHostMs: setupClock.realSeconds(START_HOST_SECONDS) * 1000,
          resetMs: setupClock.realSeconds(RESET_SECONDS) * 1000,
          onAssignment: (name, command) => holdings?.assigned(name, command),
          onReset: (name) => holdings?.reset(name),
          signal: controller.signal,
        }),
      );
    }
    runs = [...vms.values()].map((vm) => vm.run());
    const deadline = Date.now() + 120_000;
    while ((await countFreeVms(options.sql)) < scenario.vms) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${scenario.vms} free VMs`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const clock = new WorkshopClock(scenario.minuteMs);
    holdings = new FakeHoldings(fakeCodes, clock);
    const workshop: Workshop = { url: new URL(server.url), google, vms, clock, signal: controller.signal };
    const random = randomSource(scenario.seed);
    const participants = Array.from({ length: scenario.participants }, (_, index) =>
      participate(
        {
          index,
          address: `127.0.1.${1 + Math.floor(index / scenario.participantsPerAddress)}`,
          arriveAtMinute: (index * scenario.arrivalMinutes) / scenario.participants,
          connectAfterSeconds: random(60, 180),
          leaveAfterMinutes: leaves(index) ? scenario.leaveAfterMinutes : undefined,
        },
        workshop,
      ),
    );
    const fakes = Array.from({ length: scenario.fakeAddresses }, async (_, address) => {
      const answers: string[] = [];
      for (let sent = 0; sent < scenario.fakesPerAddress; sent += 1) {
        await clock.until(sent * scenario.fakeEveryMinutes, controller.signal);
        answers.push(await fakeRequest(address * scenario.fakesPerAddress + sent, `127.0.2.${address + 1}`, workshop));
      }
      return answers;
    });
    // The first error anywhere ends the run; a participant who is done simply stops.
    const firstError = new Promise<never>((_, reject) => [...runs, ...participants, ...fakes].forEach((run) => run.catch(reject)));
    await Promise.race([clock.until(scenario.workshopMinutes, controller.signal), firstError]);
    const fakeAnswers = (await Promise.all(fakes)).flat();
    const endMinute = clock.now();
    controller.abort();
    const outcomes: ParticipantOutcome[] = await Promise.all(participants);
    // A stranger's place called to paste a fresh command keeps a free VM for them until its turn passes.
    const [{ turns }] = await options.sql.query<{ turns: number }>(
      `SELECT count(*)::int AS turns FROM waiting_line WHERE email LIKE 'stranger-%' AND called_at IS NOT NULL AND served_at IS NULL`,
    );
    const served = outcomes.filter((outcome) => outcome.readyAtMinute !== undefined);
    const waits = served.map((outcome) => outcome.readyAtMinute! - outcome.submittedAtMinute!);
    return {
      scenario: 'capacity',
      scale: `1 workshop minute = ${scenario.minuteMs / 1000} real s; the idle release (failed setup ${DEFAULT_IDLE_RELEASE.failedAfterSeconds! / 60} min, never connected ${DEFAULT_IDLE_RELEASE.unconnectedAfterSeconds! / 60} min), its sweep (${SWEEP_SECONDS} s), the line's turn (${DEFAULT_LINE_POLICY.turnSeconds / 60} min, commands older than ${DEFAULT_LINE_POLICY.freshCommandSeconds / 60} min asked again) and the address window (${DEFAULT_ADDRESS_LIMIT.vms} VMs per ${DEFAULT_ADDRESS_LIMIT.windowSeconds / 60} min) scaled alike; start-host ${START_HOST_SECONDS} s, reset ${RESET_SECONDS} s`,
      vms: scenario.vms,
      participants: scenario.participants,
      participantAddresses: Math.ceil(scenario.participants / scenario.participantsPerAddress),
      arrivalMinutes: scenario.arrivalMinutes,
      leaving: {
        participants: outcomes.filter((_, index) => leaves(index)).length,
        afterMinutes: scenario.leaveAfterMinutes,
        left: outcomes.filter((outcome) => outcome.leftAtMinute !== undefined).length,
      },
      workshopMinutes: scenario.workshopMinutes,
      served: served.length,
      notServed: outcomes.length - served.length,
      waitMinutes: summarize(waits),
      formAnswers: count(outcomes.flatMap((outcome) => outcome.answers)),
      freshCommandsInLine: outcomes.reduce((sum, outcome) => sum + outcome.freshCommands, 0),
      fakes: {
        requests: fakeAnswers.length,
        addresses: scenario.fakeAddresses,
        answers: count(fakeAnswers),
        held: holdings.report(endMinute),
        turnsInLineLetPass: { turns, vmMinutesAtMost: turns * (DEFAULT_LINE_POLICY.turnSeconds / 60) },
      },
    };
  } finally {
    controller.abort();
    await Promise.allSettled(runs);
    await server.stop();
  }
}
