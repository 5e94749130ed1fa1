import { VM_STATUSES, VmStatus, statusLabel } from '../../store/vm-status';
import { recordPoll } from '../../store/vms';
import { PROBE_EMAIL } from '../../contract/wire';
import { TEST_ADMIN_SECRET } from '../support/fixtures';
import { TestStack, freeCount, sendLogsAsVm, startTestStack } from '../support/stack';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;
const PARTICIPANT = `email = hostname || '@example.com', assigned_at = now()`;

/**
 * How a polling VM is brought into each status of the vocabulary. A Record, so a status added to
 * store/vm-status.ts without a way to reach it here does not compile.
 */
const REACH: Record<VmStatus, string> = {
  free: `last_seen = now()`,
  replacing: `failed_at = now(), failure = 'The agent stopped reporting', replacement_requested_at = now()`,
  'setup-failed': `failed_at = now(), failure = 'Setup failed at setup-script: exit code 1', alive_until = now()`,
  failed: `failed_at = now(), failure = 'GPU check failed: GPU is lost'`,
  stopped: `stopped_at = now(), alive_until = now()`,
  starting: `started_at = now(), alive_until = now()`,
  'reset-stuck': `state = 'resetting', reset_requested_at = now() - interval '11 minutes'`,
  resetting: `state = 'resetting', reset_requested_at = now()`,
  checking: `state = 'delivered', email = '${PROBE_EMAIL}'`,
  'participant-stuck': `state = 'error', ${PARTICIPANT}, error = 'start-host exited with code 1: host crashed', start_failures = 2`,
  'command-rejected': `state = 'error', ${PARTICIPANT}, error = 'start-host exited with code 1: OAuth error: invalid_grant'`,
  'start-failed': `state = 'error', ${PARTICIPANT}, error = 'start-host exited with code 1: host crashed', start_failures = 1`,
  'waiting-for-command': `state = 'error', ${PARTICIPANT}, moved_from = 'lab-gone', error = 'moved'`,
  stale: `state = 'configured', ${PARTICIPANT}, health_reported_at = now() - interval '10 minutes'`,
  unhealthy: `state = 'configured', ${PARTICIPANT}, health_reported_at = now(), crd_running = false, unhealthy_since = now()`,
  booting: `alive_until = now()`,
  'not-polling': `alive_until = now(), registered_at = now() - interval '30 minutes'`,
  assigned: `state = 'assigned', ${PARTICIPANT}`,
  configuring: `state = 'delivered', ${PARTICIPANT}`,
  ready: `state = 'configured', ${PARTICIPANT}`,
};

/** Two of each, so a count that leaves one out cannot pass by accident; the probe has one email, so one VM. */
function copiesOf(status: VmStatus): number[] {
  return status === 'checking' ? [1] : [1, 2];
}
const SEEDED_VMS = VM_STATUSES.reduce((count, status) => count + copiesOf(status).length, 0);

/** The tiles' numbers by status, as the dashboard shows them. */
function tileCounts(tiles: string): Map<string, number> {
  return new Map(
    [...tiles.matchAll(/data-status="([^"]+)"[^>]*><span class="tile-count">(\d+)<\/span>/g)].map((match) => [match[1], Number(match[2])]),
  );
}

function rowCounts(rows: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const match of rows.matchAll(/<tr data-hostname="[^"]+" data-status="([^"]+)"/g))
    counts.set(match[1], (counts.get(match[1]) ?? 0) + 1);
  return counts;
}

describe('one vocabulary of VM states: rows, tiles, summary, form count, JSON and CSV agree', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack();
    await env.db.pool.query('DELETE FROM vms');
    for (const status of VM_STATUSES) {
      for (const copy of copiesOf(status)) {
        const hostname = `st-${status}-${copy}`;
        await recordPoll(env.db.sql, hostname, 60);
        await env.db.pool.query(`UPDATE vms SET ${REACH[status]} WHERE hostname = $1`, [hostname]);
      }
    }
  });
  afterAll(async () => env?.close());

  it('reaches every status of the vocabulary, each by its own predicate', async () => {
    const { vms } = (await (await fetch(`${env.url}/api/vms`, { headers: { authorization: ADMIN } })).json()) as {
      vms: { hostname: string; status: string; status_label: string }[];
    };
    for (const vm of vms) {
      const expected = vm.hostname.replace(/^st-|-\d$/g, '') as VmStatus;
      expect({ hostname: vm.hostname, status: vm.status, label: vm.status_label }).toEqual({
        hostname: vm.hostname,
        status: expected,
        label: statusLabel(expected),
      });
    }
    expect(vms).toHaveLength(SEEDED_VMS);
  });

  it('counts on the tiles exactly the rows of each status, and the form offers exactly the free ones', async () => {
    const fragment = (await (await fetch(`${env.url}/admin/rows`, { headers: { authorization: ADMIN } })).json()) as {
      rows: string;
      tiles: string;
      summary: string;
    };
    const tiles = tileCounts(fragment.tiles);
    const rows = rowCounts(fragment.rows);
    for (const status of VM_STATUSES) expect({ status, tile: tiles.get(status) ?? 0 }).toEqual({ status, tile: rows.get(status) ?? 0 });
    expect(tiles.size).toBe(VM_STATUSES.length);
    const free = await freeCount(env.url);
    expect(free).toBe(rows.get('free'));
    expect(fragment.summary).toContain(`${SEEDED_VMS} VMs, ${free} free`);
  });

  it('names each current assignment in the CSV with the label its row shows', async () => {
    const csv = await (await fetch(`${env.url}/api/vms.csv`, { headers: { authorization: ADMIN } })).text();
    const current = csv
      .trim()
      .split('\r\n')
      .slice(1)
      .map((line) => line.split(','))
      .filter((cells) => cells[3] === '' && cells[0].startsWith('st-'));
    expect(current.length).toBeGreaterThan(0);
    for (const cells of current) {
      const status = cells[0].replace(/^st-|-\d$/g, '') as VmStatus;
      expect({ vm: cells[0], label: cells[6] }).toEqual({ vm: cells[0], label: statusLabel(status) });
    }
  });

  it('gives every status its own label', () => {
    expect(new Set(VM_STATUSES.map(statusLabel)).size).toBe(VM_STATUSES.length);
  });
});

describe('before the workshop, while the VMs boot', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack();
  });
  afterAll(async () => env?.close());

  it('the dashboard counts them as booting, not as problems, and the form says they are starting and when they should be ready', async () => {
    // A VM's boot script registers it with its first log lines, long before its agent polls.
    for (const hostname of ['boot-vm-1', 'boot-vm-2']) {
      expect((await sendLogsAsVm(env.url, { hostname, step: 'install-desktop', lines: [] })).status).toBe(200);
    }
    const fragment = (await (await fetch(`${env.url}/admin/rows`, { headers: { authorization: ADMIN } })).json()) as {
      rows: string;
      tiles: string;
    };
    expect(tileCounts(fragment.tiles)).toEqual(new Map([['booting', 2]]));
    expect(fragment.rows).not.toContain('class="problem"');
    const form = (await (await fetch(`${env.url}/api/unassigned_vms_count`)).json()) as { count: number; message: string };
    expect(form).toMatchObject({ count: 0, onTheWay: 2 });
    expect(form.message).toMatch(/^No VM is free yet: 2 VMs are starting, and the first should be ready in about (9|10) min\./);
    await expect((await fetch(`${env.url}/`)).text()).resolves.toContain(form.message.replace("'", '&#39;'));

    await recordPoll(env.db.sql, 'boot-vm-1', 60);
    await expect((await fetch(`${env.url}/api/unassigned_vms_count`)).json()).resolves.toMatchObject({
      count: 1,
      message: '1 VM is free right now.',
    });
  });
});
