import pg from 'pg';
import { requestVm } from '../../store/assignment';
import { MIGRATIONS, migrate } from '../../store/migrations';
import { PgSql } from '../../store/pg-sql';
import { Sql } from '../../store/sql';
import { countFreeVms, recordPoll } from '../../store/vms';
import { dataApiOnPostgres } from '../support/data-api-on-postgres';
import { TestDatabase, createTestDatabase } from '../support/database';
import { crdCommand } from '../support/fixtures';

const executors: [string, (pool: pg.Pool) => Sql][] = [
  ['the pg executor', (pool) => new PgSql(pool)],
  ['the Data API executor (client mocked with aws-sdk-client-mock, answered by real PostgreSQL)', (pool) => dataApiOnPostgres(pool).sql],
];

describe.each(executors)('requestVm against real PostgreSQL through %s', (_name, executorFor) => {
  let db: TestDatabase;
  let sql: Sql;

  beforeEach(async () => {
    db = await createTestDatabase();
    sql = executorFor(db.appPool);
  });
  afterEach(async () => {
    await db.drop();
  });

  async function registerVms(count: number, aliveSeconds = 60): Promise<string[]> {
    const names = Array.from({ length: count }, (_, index) => `vm-${String(index + 1).padStart(2, '0')}`);
    for (const name of names) await recordPoll(sql, name, aliveSeconds);
    return names;
  }

  it('assigns a waiting VM with a fresh six-digit PIN and stores the canonical command', async () => {
    await registerVms(2);
    const result = await requestVm(sql, { email: 'Alice@Example.com', crdCommand: crdCommand() });
    expect(result).toMatchObject({ kind: 'assigned', email: 'alice@example.com', outcome: 'assigned' });
    if (result.kind !== 'assigned') return;
    expect(result.pin).toMatch(/^\d{6}$/);
    const { rows } = await db.pool.query('SELECT state, email, pin, crd_command FROM vms WHERE hostname = $1', [result.hostname]);
    expect(rows[0]).toMatchObject({ state: 'assigned', email: 'alice@example.com', pin: result.pin });
    expect(rows[0].crd_command).toMatch(/^DISPLAY= \/opt\/google\/chrome-remote-desktop\/start-host --code="4\//);
    expect(await countFreeVms(sql)).toBe(1);
  });

  it('gives the same email the same VM and PIN again, without taking a second VM', async () => {
    await registerVms(3);
    const first = await requestVm(sql, { email: 'bob@example.com', crdCommand: crdCommand() });
    const second = await requestVm(sql, { email: 'BOB@example.com ', crdCommand: crdCommand() });
    expect(first.kind).toBe('assigned');
    expect(second).toMatchObject({ kind: 'assigned', outcome: 'existing' });
    if (first.kind !== 'assigned' || second.kind !== 'assigned') return;
    expect([second.hostname, second.pin]).toEqual([first.hostname, first.pin]);
    // Knowing the email is not proof of the browser that stored the command: no token to replace it.
    expect(first.retryToken).toMatch(/^[\w-]{32}$/);
    expect(second.retryToken).toBeUndefined();
    expect(await countFreeVms(sql)).toBe(2);
  });

  it('re-arms a participant’s failed VM with their new command, keeping VM and PIN', async () => {
    await registerVms(2);
    const first = await requestVm(sql, { email: 'retry@example.com', crdCommand: crdCommand() });
    if (first.kind !== 'assigned') throw new Error('expected an assignment');
    await db.pool.query(`UPDATE vms SET state = 'error', error = 'code expired', crd_command = NULL WHERE hostname = $1`, [first.hostname]);
    const newCommand = crdCommand();
    // Someone who only knows the email cannot put their own command on the failed VM.
    const before = await db.dumpVms();
    expect(await requestVm(sql, { email: 'retry@example.com', crdCommand: crdCommand() })).toEqual({
      kind: 'retry_refused',
      hostname: first.hostname,
    });
    expect(await db.dumpVms()).toEqual(before);
    // Nor is the assignment id, which anyone with the email can see.
    expect(await requestVm(sql, { email: 'retry@example.com', crdCommand: crdCommand(), retryToken: first.assignmentId })).toMatchObject({
      kind: 'retry_refused',
    });
    const second = await requestVm(sql, { email: 'retry@example.com', crdCommand: newCommand, retryToken: first.retryToken });
    expect(second).toMatchObject({ kind: 'assigned', outcome: 'retried', hostname: first.hostname, pin: first.pin });
    if (second.kind !== 'assigned') return;
    expect(second.assignmentId).not.toBe(first.assignmentId);
    expect(second.retryToken).not.toBe(first.retryToken);
    // A double click of that retry finds the VM already re-armed: not a refusal.
    const doubleClick = await requestVm(sql, { email: 'retry@example.com', crdCommand: crdCommand(), retryToken: first.retryToken });
    expect(doubleClick).toMatchObject({ kind: 'assigned', outcome: 'existing' });
    expect(doubleClick).not.toHaveProperty('retryToken');
    const { rows } = await db.pool.query('SELECT state, error, crd_command FROM vms WHERE hostname = $1', [first.hostname]);
    expect(rows[0]).toEqual({ state: 'assigned', error: null, crd_command: newCommand });
    expect(await countFreeVms(sql)).toBe(1);
  });

  it('takes each retry token once: after a retry fails again, the old token is refused and the new one works', async () => {
    await registerVms(1);
    const fail = async (hostname: string) =>
      db.pool.query(`UPDATE vms SET state = 'error', error = 'code expired', crd_command = NULL WHERE hostname = $1`, [hostname]);
    const first = await requestVm(sql, { email: 'twice@example.com', crdCommand: crdCommand() });
    if (first.kind !== 'assigned') throw new Error('expected an assignment');
    await fail(first.hostname);
    const second = await requestVm(sql, { email: 'twice@example.com', crdCommand: crdCommand(), retryToken: first.retryToken });
    if (second.kind !== 'assigned' || second.outcome !== 'retried') throw new Error('expected a retry');
    await fail(first.hostname);

    const before = await db.dumpVms();
    expect(await requestVm(sql, { email: 'twice@example.com', crdCommand: crdCommand(), retryToken: first.retryToken })).toEqual({
      kind: 'retry_refused',
      hostname: first.hostname,
    });
    expect(await db.dumpVms()).toEqual(before);
    const third = await requestVm(sql, { email: 'twice@example.com', crdCommand: crdCommand(), retryToken: second.retryToken });
    expect(third).toMatchObject({ kind: 'assigned', outcome: 'retried', hostname: first.hostname, pin: first.pin });
  });

  it('does not hand out a VM whose agent stopped polling', async () => {
    await recordPoll(sql, 'vm-dead', 60);
    await db.pool.query(`UPDATE vms SET alive_until = now() - interval '1 second' WHERE hostname = 'vm-dead'`);
    expect(await countFreeVms(sql)).toBe(0);
    expect(await requestVm(sql, { email: 'carol@example.com', crdCommand: crdCommand() })).toEqual({ kind: 'no_vm_free' });
    expect((await db.dumpVms())[0]).toMatchObject({ hostname: 'vm-dead', state: 'waiting', email: null });
  });

  it('hands 10 VMs to exactly 10 of 50 concurrent participants, none twice', async () => {
    await registerVms(10);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, index) => requestVm(sql, { email: `p${index}@example.com`, crdCommand: crdCommand() })),
    );
    const assigned = results.filter((result) => result.kind === 'assigned');
    expect(assigned).toHaveLength(10);
    expect(results.filter((result) => result.kind === 'no_vm_free')).toHaveLength(40);
    expect(new Set(assigned.map((result) => result.kind === 'assigned' && result.hostname)).size).toBe(10);
    const { rows } = await db.pool.query(
      `SELECT count(DISTINCT email)::int AS emails, count(*)::int AS vms FROM vms WHERE email IS NOT NULL`,
    );
    expect(rows[0]).toEqual({ emails: 10, vms: 10 });
  });

  it('gives one VM to the same email submitted many times at once', async () => {
    await registerVms(5);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => requestVm(sql, { email: 'dave@example.com', crdCommand: crdCommand() })),
    );
    expect(results.map((result) => result.kind)).toEqual(Array(20).fill('assigned'));
    const hostnames = new Set(results.map((result) => result.kind === 'assigned' && result.hostname));
    expect(hostnames.size).toBe(1);
    expect(await countFreeVms(sql)).toBe(4);
  });

  it('finds the VM a concurrent request of the same email is still committing, instead of refusing', async () => {
    await registerVms(1);
    const other = await db.pool.connect();
    try {
      await other.query('BEGIN');
      await other.query(
        `UPDATE vms SET state = 'assigned', email = 'erin@example.com', pin = '123456', assignment_id = gen_random_uuid(), assigned_at = now() WHERE hostname = 'vm-01'`,
      );
      const pending = requestVm(sql, { email: 'erin@example.com', crdCommand: crdCommand() });
      await new Promise((resolve) => setTimeout(resolve, 50));
      await other.query('COMMIT');
      expect(await pending).toMatchObject({ kind: 'assigned', hostname: 'vm-01', pin: '123456', outcome: 'existing' });
    } finally {
      other.release();
    }
  });

  it('a double-clicked submit for the last free VM never reads "no VM free"', async () => {
    await registerVms(1);
    for (let round = 0; round < 20; round += 1) {
      const request = () => requestVm(sql, { email: `double${round}@example.com`, crdCommand: crdCommand() });
      const results = await Promise.all([request(), request()]);
      expect(results.map((result) => result.kind)).toEqual(['assigned', 'assigned']);
      await db.pool.query(`UPDATE vms SET state = 'waiting', email = NULL, pin = NULL, crd_command = NULL, assignment_id = NULL`);
    }
  });

  it('changes nothing for invalid input', async () => {
    await registerVms(2);
    const before = await db.dumpVms();
    expect(await requestVm(sql, { email: 'not-an-email', crdCommand: crdCommand() })).toEqual({
      kind: 'invalid',
      errors: { email: expect.stringMatching(/not a valid email/) },
    });
    expect(await requestVm(sql, { email: 'erin@example.com', crdCommand: 'start-host --code=x' })).toEqual({
      kind: 'invalid',
      errors: { crd_command: expect.stringMatching(/Debian Linux/) },
    });
    expect(await requestVm(sql, { email: 'erin@gmial.com', crdCommand: '' })).toEqual({
      kind: 'invalid',
      errors: { email: expect.stringMatching(/Did you mean erin@gmail\.com\?/), crd_command: expect.stringMatching(/empty/) },
      emailSuggestion: 'erin@gmail.com',
    });
    expect(await db.dumpVms()).toEqual(before);
  });

  it('applies migrations once: a second run changes nothing', async () => {
    expect(await migrate(executorFor(db.pool))).toEqual([]);
    const { rows } = await db.pool.query('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows).toEqual(MIGRATIONS.map((migration) => ({ version: migration.version })));
  });
});
