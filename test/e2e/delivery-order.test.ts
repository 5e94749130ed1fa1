import type { Server } from 'node:http';
import { FleetTokenVerifier } from '../../allocator/identity';
import { createAllocatorPool } from '../../allocator/pool';
import { AllocatorService, createAllocatorService } from '../../allocator/service';
import { silentLogger } from '../../core/log';
import { closeServer, listen } from '../../http/node-server';
import { requestVm } from '../../store/assignment';
import { PgSql } from '../../store/pg-sql';
import { Sql } from '../../store/sql';
import { MARK_DELIVERED } from '../../store/vms';
import { TestDatabase, createTestDatabase } from '../support/database';
import { TEST_FLEET_TOKEN, crdCommand, waitFor } from '../support/fixtures';
import { pollAsVm } from '../support/stack';

describe('a delivery is answered before anything the VM does not need (real PostgreSQL, real HTTP)', () => {
  let db: TestDatabase;
  let pool: ReturnType<typeof createAllocatorPool>;
  let service: AllocatorService;
  let server: Server;
  let url: string;
  /** What happened, in order: the answer handed to the connection, the delivered-mark sent to PostgreSQL. */
  const events: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = createAllocatorPool({ connectionString: db.appUrl }, 2);
    const real = new PgSql(pool);
    // The real executor; the test only notes when the mark goes out.
    const sql: Sql = {
      query(statement, params) {
        if (statement === MARK_DELIVERED) events.push('mark sent to the database');
        return real.query(statement, params);
      },
    };
    service = createAllocatorService({
      sql,
      listenConnection: { connectionString: db.appUrl },
      identity: new FleetTokenVerifier(TEST_FLEET_TOKEN),
      holdSeconds: 30,
      aliveGraceSeconds: 30,
      log: silentLogger,
    });
    await service.start();
    ({ server } = await listen(service.app, { hostname: '127.0.0.1', port: 0 }));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    server.on('request', (request, response) => {
      if (request.url === '/vm_startup') response.once('finish', () => events.push(`answer ${response.statusCode} sent`));
    });
  });
  afterAll(async () => {
    await service?.stop();
    if (server) await closeServer(server);
    await pool?.end();
    await db?.drop();
  });

  it('sends the held poll its assignment first, then marks it delivered', async () => {
    const held = pollAsVm(url, 'order-1');
    await waitFor(() => service.holds.size === 1, 'the poll to be held');
    const assigned = await requestVm(db.sql, { email: 'order@example.com', crdCommand: crdCommand() });
    expect(assigned).toMatchObject({ kind: 'assigned', hostname: 'order-1' });

    const answer = await held;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ status: 'success' });
    await waitFor(
      async () => (await db.pool.query(`SELECT state FROM vms WHERE hostname = 'order-1'`)).rows[0].state === 'delivered',
      'the delivered mark',
    );
    expect(events).toEqual(['answer 200 sent', 'mark sent to the database']);
  });
});
