import { requestVm } from '../../store/assignment';
import { PgSql } from '../../store/pg-sql';
import { recordReset, resetVms } from '../../store/reset';
import { Sql } from '../../store/sql';
import { recordPoll } from '../../store/vms';
import { DEFAULT_LINE_POLICY, LinePolicy, estimateWait, linePlace, linePolicyFromEnv, serveLine } from '../../store/waiting-line';
import { TestDatabase, createTestDatabase, dumpDatabase } from '../support/database';
import { crdCommand } from '../support/fixtures';

const line: LinePolicy = DEFAULT_LINE_POLICY;

/** The waiting line against real PostgreSQL: two actors are two separate connection pools, serving at the same moment. */
describe('the waiting line', () => {
  let db: TestDatabase;
  let sql: Sql;
  let other: Sql;

  beforeEach(async () => {
    db = await createTestDatabase();
    sql = new PgSql(db.appPool);
    other = new PgSql(db.pool);
  });
  afterEach(async () => db.drop());

  const ask = (email: string, retryToken?: string, actor = sql) =>
    requestVm(actor, { email, crdCommand: crdCommand(), retryToken }, { line });
  const places = async () =>
    (
      await db.pool.query(
        `SELECT email, called_at IS NOT NULL AS called, crd_command IS NOT NULL AS has_command, served_at IS NOT NULL AS served FROM waiting_line ORDER BY id`,
      )
    ).rows;
  const holderOf = async (hostname: string) => (await db.pool.query(`SELECT email FROM vms WHERE hostname = $1`, [hostname])).rows[0].email;

  /** The VM's participant leaves; its agent resets it and it is free again. */
  async function free(hostname: string): Promise<void> {
    await resetVms(sql, { scope: 'one', hostname });
    await recordReset(sql, hostname, 'done', null);
    await recordPoll(sql, hostname, 600);
  }

  /** One VM, held; two participants in line behind it. */
  async function twoWaiting(): Promise<{ first: string; second: string }> {
    await recordPoll(sql, 'line-vm-1', 600);
    expect(await ask('holder@example.com')).toMatchObject({ kind: 'assigned', hostname: 'line-vm-1' });
    const first = await ask('first@example.com');
    const second = await ask('second@example.com');
    expect(first).toMatchObject({ kind: 'in_line' });
    expect(second).toMatchObject({ kind: 'in_line' });
    if (first.kind !== 'in_line' || second.kind !== 'in_line') throw new Error('not in line');
    return { first: first.ticket, second: second.ticket };
  }

  it('a VM freed while two wait goes to exactly the first, even with two servers serving at once; the second moves up', async () => {
    for (let round = 0; round < 10; round += 1) {
      await db.pool.query('DELETE FROM waiting_line');
      await db.pool.query('DELETE FROM vms');
      const { second } = await twoWaiting();
      await free('line-vm-1');
      const [a, b] = await Promise.all([serveLine(sql, line), serveLine(other, line)]);
      expect([...a, ...b].map((served) => served.email)).toEqual(['first@example.com']);
      expect(await holderOf('line-vm-1')).toBe('first@example.com');
      expect(await linePlace(sql, second, line)).toMatchObject({ kind: 'waiting', position: 1, length: 1 });
    }
  });

  it('a first in line whose command may have expired is called for a fresh one; the VM waits for them, not for the second; pasting gets it', async () => {
    const { first, second } = await twoWaiting();
    await db.pool.query(`UPDATE waiting_line SET command_at = now() - interval '3 minutes'`);
    await free('line-vm-1');
    expect(await serveLine(other, line)).toEqual([]);
    expect(await places()).toEqual([
      { email: 'first@example.com', called: true, has_command: false, served: false },
      { email: 'second@example.com', called: false, has_command: true, served: false },
    ]);
    expect(await linePlace(sql, first, line)).toMatchObject({ kind: 'called', turnLeftSeconds: 300 });
    expect(await linePlace(sql, second, line)).toMatchObject({ kind: 'waiting', position: 2 });
    // A newcomer does not pass the line either.
    expect(await ask('newcomer@example.com')).toMatchObject({ kind: 'in_line' });
    expect(await holderOf('line-vm-1')).toBeNull();

    const token = (await db.pool.query(`SELECT token FROM waiting_line WHERE email = 'first@example.com'`)).rows[0].token;
    expect(await ask('first@example.com', token)).toEqual({ kind: 'in_line', ticket: first });
    expect(await holderOf('line-vm-1')).toBe('first@example.com');
    const served = await linePlace(sql, first, line);
    expect(served).toMatchObject({ kind: 'served' });
    // The VM keeps the browser's token: that browser sees it, and may give it back.
    expect((await db.pool.query(`SELECT retry_token FROM vms WHERE hostname = 'line-vm-1'`)).rows[0].retry_token).toBe(token);
  });

  it('a turn that runs out passes to the next in line', async () => {
    const { first, second } = await twoWaiting();
    await db.pool.query(`UPDATE waiting_line SET command_at = now() - interval '3 minutes' WHERE email = 'first@example.com'`);
    await free('line-vm-1');
    await serveLine(sql, line);
    await db.pool.query(`UPDATE waiting_line SET called_at = now() - interval '301 seconds' WHERE email = 'first@example.com'`);
    expect(await linePlace(sql, first, line)).toEqual({ kind: 'passed', email: 'first@example.com' });
    // The second's command is still fresh: the VM goes to them at once.
    expect(await linePlace(sql, second, line)).toMatchObject({ kind: 'served' });
    expect(await holderOf('line-vm-1')).toBe('second@example.com');
  });

  it('two browsers with the same email at once: one place; the other is told it waits elsewhere, and nothing is stored for it', async () => {
    await recordPoll(sql, 'line-vm-1', 600);
    await ask('holder@example.com');
    const results = await Promise.all([ask('twin@example.com', undefined, sql), ask('twin@example.com', undefined, other)]);
    expect(results.map((result) => result.kind).sort()).toEqual(['in_line', 'in_line_elsewhere']);
    expect(await places()).toHaveLength(1);
    const before = await dumpDatabase(db.pool);
    expect(await ask('twin@example.com')).toEqual({ kind: 'in_line_elsewhere' });
    expect(await dumpDatabase(db.pool)).toBe(before);
  });

  it('one place per browser: the same browser under another email is refused, and nothing is stored', async () => {
    await recordPoll(sql, 'line-vm-1', 600);
    await ask('holder@example.com');
    const joined = await ask('me@example.com');
    if (joined.kind !== 'in_line') throw new Error('not in line');
    const before = await dumpDatabase(db.pool);
    expect(await ask('someone-else@example.com', joined.retryToken)).toEqual({ kind: 'browser_in_line', ticket: joined.ticket });
    expect(await dumpDatabase(db.pool)).toBe(before);
  });

  it('an address over its limit gets no place in line', async () => {
    await recordPoll(sql, 'line-vm-1', 600);
    const client = { address: '203.0.113.9', addressLimit: { vms: 1, windowSeconds: 86_400 }, line };
    expect(await requestVm(sql, { email: 'a@example.com', crdCommand: crdCommand() }, client)).toMatchObject({ kind: 'assigned' });
    expect(await requestVm(sql, { email: 'b@example.com', crdCommand: crdCommand() }, client)).toMatchObject({ kind: 'address_limited' });
    expect(await places()).toEqual([]);
  });

  it('estimates each place from the VMs on their way: a reset due in about 2 minutes is for the first, nothing yet for the second', async () => {
    const { first, second } = await twoWaiting();
    await resetVms(sql, { scope: 'one', hostname: 'line-vm-1' });
    const place = await linePlace(sql, first, line);
    expect(place).toMatchObject({ kind: 'waiting', position: 1, estimate: { status: 'resetting' } });
    if (place?.kind !== 'waiting') return;
    expect(place.estimate!.seconds).toBeGreaterThan(100);
    expect(place.estimate!.seconds).toBeLessThanOrEqual(120);
    expect(await linePlace(sql, second, line)).toMatchObject({ kind: 'waiting', position: 2, estimate: undefined });
  });
});

describe('estimateWait', () => {
  const onTheWay = [
    { status: 'resetting' as const, seconds: 30 },
    { status: 'starting' as const, seconds: 150 },
  ];
  it('gives the places behind the free VMs the VMs on their way, soonest first', () => {
    expect(estimateWait(1, 1, onTheWay)).toEqual({ status: 'free', seconds: 0 });
    expect(estimateWait(2, 1, onTheWay)).toEqual(onTheWay[0]);
    expect(estimateWait(3, 1, onTheWay)).toEqual(onTheWay[1]);
    expect(estimateWait(4, 1, onTheWay)).toBeUndefined();
  });
});

describe('linePolicyFromEnv', () => {
  it('takes LABLINK_LINE_TURN_SECONDS, keeps the default without it, and refuses nonsense with a clear message', () => {
    expect(linePolicyFromEnv({})).toEqual(DEFAULT_LINE_POLICY);
    expect(linePolicyFromEnv({ LABLINK_LINE_TURN_SECONDS: '120' })).toEqual({ ...DEFAULT_LINE_POLICY, turnSeconds: 120 });
    for (const bad of ['5', '1.5', 'ten']) {
      expect(() => linePolicyFromEnv({ LABLINK_LINE_TURN_SECONDS: bad })).toThrow(
        `LABLINK_LINE_TURN_SECONDS must be a whole number of seconds, at least 30 (got ${bad}).`,
      );
    }
  });
});
