import { Lease } from '../../store/lease';
import { TestDatabase, createTestDatabase } from '../support/database';

const ROUND_MS = 15_000;

describe('a lease held by one allocator task at a time, against real PostgreSQL', () => {
  let db: TestDatabase;
  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => db.drop());

  /** The holder missed its renewals for longer than the lease lasts (three rounds). */
  const expire = async (name: string) =>
    db.pool.query(`UPDATE allocator_leases SET expires_at = now() - interval '1 second' WHERE name = $1`, [name]);

  it('is taken by one task, refused to another while held and renewed, and taken over once it expires', async () => {
    const [oldTask, newTask] = [new Lease(db.sql, 'warm-pool', ROUND_MS), new Lease(db.sql, 'warm-pool', ROUND_MS)];
    expect(await oldTask.take()).toBe(true);
    expect(await newTask.take()).toBe(false);
    expect(await oldTask.take()).toBe(true);
    expect(await newTask.take()).toBe(false);

    await expire('warm-pool');
    expect(await newTask.take()).toBe(true);
    // The old holder comes back (a paused task): it does not get the lease back while the new one holds it.
    expect(await oldTask.take()).toBe(false);
    expect(await newTask.take()).toBe(true);
  });

  it('lasts three rounds from each renewal', async () => {
    const lease = new Lease(db.sql, 'spares', ROUND_MS);
    await lease.take();
    const { rows } = await db.pool.query(
      `SELECT extract(epoch FROM expires_at - now())::float8 AS seconds FROM allocator_leases WHERE name = 'spares'`,
    );
    expect(rows[0].seconds).toBeGreaterThan((2 * ROUND_MS) / 1000);
    expect(rows[0].seconds).toBeLessThanOrEqual((3 * ROUND_MS) / 1000);
  });

  it('is handed over at once when its holder releases it; a release by a task that does not hold it changes nothing', async () => {
    const [holder, other, third] = [
      new Lease(db.sql, 'warm-pool', ROUND_MS),
      new Lease(db.sql, 'warm-pool', ROUND_MS),
      new Lease(db.sql, 'warm-pool', ROUND_MS),
    ];
    expect(await holder.take()).toBe(true);
    await other.release();
    expect(await third.take()).toBe(false);
    await holder.release();
    expect(await other.take()).toBe(true);
    expect(await third.take()).toBe(false);
  });

  it('keeps leases of different names apart', async () => {
    expect(await new Lease(db.sql, 'warm-pool', ROUND_MS).take()).toBe(true);
    expect(await new Lease(db.sql, 'spares', ROUND_MS).take()).toBe(true);
  });
});
