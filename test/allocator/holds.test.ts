import { HoldRegistry } from '../../allocator/holds';
import { RecordingLogger, recordingLogger } from '../support/recording-logger';
import { Delivery } from '../../store/vms';

/** One read of a VM's row that the test answers by hand, to put a wake-up exactly where a race needs it. */
interface PendingRead {
  hostname: string;
  answer(delivery: Delivery | undefined): void;
  fail(error: Error): void;
}

const DELIVERY: Delivery = {
  kind: 'assignment',
  command: 'the command',
  pin: '123456',
  assignmentId: '00000000-0000-4000-8000-000000000001',
  email: 'p@example.com',
};
const LONG_HOLD_MS = 600_000;

/** Lets every settled promise run its continuations, so "no further read started" is a real observation. */
async function settle(): Promise<void> {
  for (let round = 0; round < 20; round += 1) await new Promise((resolve) => setImmediate(resolve));
}

describe('HoldRegistry with reads the test resolves by hand', () => {
  let reads: PendingRead[];
  let log: RecordingLogger;
  let registry: HoldRegistry;
  let controller: AbortController;

  beforeEach(() => {
    reads = [];
    log = recordingLogger();
    controller = new AbortController();
    registry = new HoldRegistry(
      (hostname) =>
        new Promise<Delivery | undefined>((resolve, reject) => {
          reads.push({ hostname, answer: resolve, fail: reject });
        }),
      log,
    );
  });
  afterEach(() => registry.endAll());

  it('reads the row once when a hold starts, and delivers what that read finds', async () => {
    const held = registry.hold('vm-1', LONG_HOLD_MS, controller.signal);
    expect(reads.map((read) => read.hostname)).toEqual(['vm-1']);
    reads[0].answer(DELIVERY);
    expect(await held).toEqual(DELIVERY);
    expect(registry.size).toBe(0);
  });

  it('reads again when a wake-up arrives during a read (the assignment committed after that read looked), also during the re-read', async () => {
    const held = registry.hold('vm-1', LONG_HOLD_MS, controller.signal);
    registry.wake('vm-1');
    await settle();
    expect(reads).toHaveLength(1);
    reads[0].answer(undefined);
    await settle();
    expect(reads).toHaveLength(2);
    registry.wake('vm-1');
    reads[1].answer(undefined);
    await settle();
    expect(reads).toHaveLength(3);
    reads[2].answer(DELIVERY);
    expect(await held).toEqual(DELIVERY);
  });

  it('several wake-ups during one read lead to exactly one more read', async () => {
    const held = registry.hold('vm-1', LONG_HOLD_MS, controller.signal);
    registry.wake('vm-1');
    registry.wake('vm-1');
    registry.wake('vm-1');
    reads[0].answer(undefined);
    await settle();
    expect(reads).toHaveLength(2);
    reads[1].answer(undefined);
    await settle();
    expect(reads).toHaveLength(2);
    // Still held: a later wake-up reads again and delivers.
    expect(registry.hostnames()).toEqual(['vm-1']);
    registry.wake('vm-1');
    expect(reads).toHaveLength(3);
    reads[2].answer(DELIVERY);
    expect(await held).toEqual(DELIVERY);
  });

  it('wakes only the VM named: another VM’s hold is not read, and a VM without a hold costs no read', async () => {
    const first = registry.hold('vm-1', LONG_HOLD_MS, controller.signal);
    void registry.hold('vm-2', LONG_HOLD_MS, controller.signal);
    reads[0].answer(undefined);
    reads[1].answer(undefined);
    await settle();
    registry.wake('vm-1');
    registry.wake('vm-9');
    expect(reads.map((read) => read.hostname)).toEqual(['vm-1', 'vm-2', 'vm-1']);
    reads[2].answer(DELIVERY);
    expect(await first).toEqual(DELIVERY);
    expect(registry.hostnames()).toEqual(['vm-2']);
  });

  it('keeps the hold when a read fails, logs why, and delivers on the next wake-up', async () => {
    const held = registry.hold('vm-1', LONG_HOLD_MS, controller.signal);
    reads[0].fail(new Error('connection reset'));
    await settle();
    expect(registry.hostnames()).toEqual(['vm-1']);
    expect(log.events).toEqual([{ event: 'hold.check_failed', fields: { hostname: 'vm-1', reason: 'connection reset' } }]);
    registry.wake('vm-1');
    reads[1].answer(DELIVERY);
    expect(await held).toEqual(DELIVERY);
  });

  it('a newer poll from the same VM answers the older one "nothing yet"; the late read of the older one delivers nothing to it', async () => {
    const older = registry.hold('vm-1', LONG_HOLD_MS, controller.signal);
    const newer = registry.hold('vm-1', LONG_HOLD_MS, controller.signal);
    expect(await older).toBeUndefined();
    expect(registry.size).toBe(1);
    reads[0].answer(DELIVERY);
    await settle();
    expect(registry.size).toBe(1);
    reads[1].answer(DELIVERY);
    expect(await newer).toEqual(DELIVERY);
    expect(registry.size).toBe(0);
  });

  it('answers "nothing yet" when the agent hangs up during a read, and forgets the hold', async () => {
    const held = registry.hold('vm-1', LONG_HOLD_MS, controller.signal);
    controller.abort();
    expect(await held).toBeUndefined();
    expect(registry.size).toBe(0);
    reads[0].answer(DELIVERY);
    registry.wake('vm-1');
    await settle();
    expect(reads).toHaveLength(1);
  });

  it('answers "nothing yet" when the hold time is up, and on shutdown', async () => {
    const short = registry.hold('vm-1', 1, controller.signal);
    reads[0].answer(undefined);
    expect(await short).toBeUndefined();
    const other = registry.hold('vm-2', LONG_HOLD_MS, controller.signal);
    registry.endAll();
    expect(await other).toBeUndefined();
    expect(registry.size).toBe(0);
  });
});
