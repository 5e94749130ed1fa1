import { Sql } from '../../store/sql';
import { readVmLogs, recordVmLogs } from '../../store/vm-logs';
import { countFreeVms, recordPoll } from '../../store/vms';
import { VmLogLine } from '../../contract/wire';
import { dataApiOnPostgres } from '../support/data-api-on-postgres';
import { TestDatabase, createTestDatabase } from '../support/database';

const line = (text: string, level: VmLogLine['level'] = 'info'): VmLogLine => ({
  at: '2026-12-01T10:00:00.000Z',
  level,
  source: 'boot',
  text,
});

describe.each([
  ['pg', (db: TestDatabase): Sql => db.sql],
  [
    'the Data API (client mocked with aws-sdk-client-mock, answered by real PostgreSQL)',
    (db: TestDatabase): Sql => dataApiOnPostgres(db.pool).sql,
  ],
])('VM logs through %s', (_executor, executorFor) => {
  let db: TestDatabase;
  let sql: Sql;
  beforeAll(async () => {
    db = await createTestDatabase();
    sql = executorFor(db);
  });
  afterAll(async () => db?.drop());

  it('registers a VM from its first batch without counting it free, and a poll makes it free', async () => {
    expect(await readVmLogs(sql, 'early-vm')).toBeUndefined();
    expect(await recordVmLogs(sql, 'early-vm', { step: 'registering', lines: [] })).toEqual({ registered: true });
    expect(await readVmLogs(sql, 'early-vm')).toMatchObject({ hostname: 'early-vm', step: 'registering', lines: [] });
    expect(await countFreeVms(sql)).toBe(0);
    await recordPoll(sql, 'early-vm', 60);
    expect(await countFreeVms(sql)).toBe(1);
    // A later batch neither registers it again nor ends its poll's window.
    expect(await recordVmLogs(sql, 'early-vm', { step: 'waiting', lines: [line('polling')] })).toEqual({ registered: false });
    expect(await countFreeVms(sql)).toBe(1);
  });

  it('keeps 500 lines of a VM, its first 100 and the newest, in the order they came, and the step with the time it was entered', async () => {
    for (let batch = 0; batch < 6; batch += 1) {
      const lines = Array.from({ length: 100 }, (_, index) => line(`line ${batch * 100 + index + 1}`, index === 0 ? 'error' : 'info'));
      await recordVmLogs(sql, 'busy-vm', { step: 'install-desktop', lines });
    }
    const view = (await readVmLogs(sql, 'busy-vm'))!;
    expect(view.lines).toHaveLength(500);
    expect(view.lines.slice(99, 101).map((stored) => stored.text)).toEqual(['line 100', 'line 201']);
    expect(view.lines[499].text).toBe('line 600');
    expect(view.lines.map((stored) => stored.text)).not.toContain('line 101');
    expect(view.lines[0]).toEqual(line('line 1', 'error'));

    const errors = (await readVmLogs(sql, 'busy-vm', 'error'))!.lines.map((stored) => stored.text);
    expect(errors).toEqual(['line 1', 'line 201', 'line 301', 'line 401', 'line 501']);

    const enteredAt = view.stepAt;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await recordVmLogs(sql, 'busy-vm', { step: 'install-desktop', lines: [] });
    expect((await readVmLogs(sql, 'busy-vm'))!.stepAt).toBe(enteredAt);
    await recordVmLogs(sql, 'busy-vm', { lines: [] });
    expect((await readVmLogs(sql, 'busy-vm'))!.step).toBe('install-desktop');
    await recordVmLogs(sql, 'busy-vm', { step: 'install-crd', lines: [] });
    const moved = (await readVmLogs(sql, 'busy-vm'))!;
    expect(moved.step).toBe('install-crd');
    expect(Date.parse(moved.stepAt!)).toBeGreaterThan(Date.parse(enteredAt!));
  });

  it('stores text as it is: quotes, backslashes, HTML and non-Latin letters', async () => {
    const text = `"quoted" \\ back\tslash <script>alert('x')</script> ünïcödé 日本語 🙂`;
    await recordVmLogs(sql, 'text-vm', { lines: [line(text)] });
    expect((await readVmLogs(sql, 'text-vm'))!.lines.map((stored) => stored.text)).toEqual([text]);
  });
});
