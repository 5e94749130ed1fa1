import { VmSummary } from '../../store/vms';
import { vmSummary } from '../support/fixtures';
import { DEFAULT_ORDER, parseVmOrder, sortVms, timeAgo } from '../../web/vm-order';

const NOW = Date.parse('2026-12-02T10:00:00Z');

/** A free VM that has not reported its health yet, seen just before NOW. */
function vm(hostname: string, fields: Partial<VmSummary> = {}): VmSummary {
  return vmSummary(hostname, {
    registered_at: '2026-12-02T09:00:00Z',
    last_seen: '2026-12-02T09:59:50Z',
    uptime_seconds: null,
    disk_free_mb: null,
    in_use: null,
    health_reported_at: null,
    step: null,
    ...fields,
  });
}

describe('timeAgo', () => {
  it.each([
    ['2026-12-02T09:59:58Z', 'just now'],
    ['2026-12-02T09:59:20Z', '40 s ago'],
    ['2026-12-02T09:48:00Z', '12 min ago'],
    ['2026-12-02T07:00:00Z', '3 h ago'],
    ['2026-11-29T10:00:00Z', '3 days ago'],
    ['2026-12-02T10:00:30Z', 'just now'],
  ])('says %s was %s', (iso, text) => {
    expect(timeAgo(iso, NOW)).toBe(text);
  });
});

describe('sortVms', () => {
  const vms = [
    vm('lab-10', { status: 'ready', state: 'configured', email: 'b@example.com', assigned_at: '2026-12-02T09:10:00Z' }),
    vm('lab-2'),
    vm('lab-3', { status: 'stale', stale: true, state: 'assigned', email: 'a@example.com', assigned_at: '2026-12-02T09:30:00Z' }),
    vm('lab-1', { status: 'failed', failed_at: '2026-12-02T09:40:00Z', failure: 'GPU is lost' }),
    vm('lab-4', { status: 'not-polling', state: 'waiting', polling: false }),
  ];
  const names = (sorted: VmSummary[]) => sorted.map((one) => one.hostname);

  it('puts problems first by default, worst first, then in natural name order', () => {
    expect(names(sortVms(vms, DEFAULT_ORDER))).toEqual(['lab-1', 'lab-3', 'lab-4', 'lab-2', 'lab-10']);
  });

  it("puts a failed start-host before a VM waiting for a moved participant's new command, and a normal boot among the healthy", () => {
    const moved = vm('lab-5', { status: 'waiting-for-command', state: 'error', moved_from: 'lab-1' });
    const failed = vm('lab-6', { status: 'start-failed', state: 'error' });
    const booting = vm('lab-7', { status: 'booting', polling: false });
    expect(names(sortVms([booting, moved, failed], DEFAULT_ORDER))).toEqual(['lab-6', 'lab-5', 'lab-7']);
  });

  it('sorts names naturally both ways', () => {
    expect(names(sortVms(vms, { key: 'hostname', direction: 'asc' }))).toEqual(['lab-1', 'lab-2', 'lab-3', 'lab-4', 'lab-10']);
    expect(names(sortVms(vms, { key: 'hostname', direction: 'desc' }))).toEqual(['lab-10', 'lab-4', 'lab-3', 'lab-2', 'lab-1']);
  });

  it('keeps VMs without the value last in either direction', () => {
    expect(names(sortVms(vms, { key: 'assigned', direction: 'asc' }))).toEqual(['lab-10', 'lab-3', 'lab-1', 'lab-2', 'lab-4']);
    expect(names(sortVms(vms, { key: 'assigned', direction: 'desc' }))).toEqual(['lab-3', 'lab-10', 'lab-1', 'lab-2', 'lab-4']);
    expect(names(sortVms(vms, { key: 'email', direction: 'desc' })).slice(0, 2)).toEqual(['lab-10', 'lab-3']);
  });
});

describe('parseVmOrder', () => {
  it('defaults to problems first, and to ascending for a named column', () => {
    expect(parseVmOrder(undefined, undefined)).toEqual({ ok: true, order: { key: 'health', direction: 'asc' } });
    expect(parseVmOrder('seen', undefined)).toEqual({ ok: true, order: { key: 'seen', direction: 'asc' } });
    expect(parseVmOrder('seen', 'desc')).toEqual({ ok: true, order: { key: 'seen', direction: 'desc' } });
  });

  it('refuses an unknown column or direction with what is allowed', () => {
    expect(parseVmOrder('pin', undefined)).toEqual({
      ok: false,
      message: '"sort" must be one of hostname, state, email, health, assigned, seen.',
    });
    expect(parseVmOrder('state', 'up')).toEqual({ ok: false, message: '"dir" must be "asc" or "desc".' });
  });
});
