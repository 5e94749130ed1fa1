import net, { AddressInfo } from 'node:net';
import { VmUpdate, VmUpdateListener } from '../../allocator/listener';
import { RecordingLogger, recordingLogger } from '../support/recording-logger';
import { TestDatabase, createTestDatabase } from '../support/database';
import { waitFor } from '../support/fixtures';

/**
 * A TCP relay between the listener and PostgreSQL. `freeze()` stops moving bytes on the
 * connections open so far without closing them: a half-open connection, as after a NAT or
 * load balancer silently forgets it. New connections pass again.
 */
async function startRelay(target: { host: string; port: number }): Promise<{ port: number; freeze(): void; close(): Promise<void> }> {
  const open: net.Socket[] = [];
  const pairs: [net.Socket, net.Socket][] = [];
  const server = net.createServer((inbound) => {
    const outbound = net.connect(target.port, target.host);
    for (const socket of [inbound, outbound]) {
      open.push(socket);
      socket.on('error', () => undefined);
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    pairs.push([inbound, outbound]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    freeze() {
      for (const [inbound, outbound] of pairs.splice(0)) {
        inbound.unpipe(outbound);
        outbound.unpipe(inbound);
        inbound.pause();
        outbound.pause();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('the LISTEN connection against real PostgreSQL through a TCP relay', () => {
  let db: TestDatabase;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let listener: VmUpdateListener;
  let updates: VmUpdate[];
  let listened: number;
  let log: RecordingLogger;

  const notify = (payload: string) => db.pool.query(`SELECT pg_notify('vm_updates', $1)`, [payload]);

  beforeEach(async () => {
    db = await createTestDatabase();
    const url = new URL(db.appUrl);
    relay = await startRelay({ host: url.hostname, port: Number(url.port) });
    url.host = `127.0.0.1:${relay.port}`;
    updates = [];
    listened = 0;
    log = recordingLogger();
    listener = new VmUpdateListener({
      connection: { connectionString: url.toString() },
      onUpdate: (update) => updates.push(update),
      onListening: () => (listened += 1),
      log,
      pingIntervalMs: 200,
    });
    await listener.start();
  });
  afterEach(async () => {
    // The relay first: ending a client on a frozen connection would wait for an answer that never comes.
    await relay.close();
    await listener.stop();
    await db.drop();
  });

  it('notices a connection that silently stopped answering, listens again, asks for a re-read, and gets notifications again', async () => {
    await notify(JSON.stringify({ hostname: 'vm-a', state: 'assigned' }));
    await waitFor(() => updates.length === 1, 'the first notification');
    expect(listened).toBe(1);

    relay.freeze();
    await waitFor(() => listened === 2, 'the listener to listen again on a new connection');
    expect(log.events).toContainEqual({ event: 'listener.lost', fields: { reason: 'the LISTEN connection stopped answering' } });
    expect(listener.isListening).toBe(true);

    await notify(JSON.stringify({ hostname: 'vm-c', state: 'assigned' }));
    await waitFor(() => updates.some((update) => update.hostname === 'vm-c'), 'a notification on the new connection');
    expect(updates).toEqual([
      { hostname: 'vm-a', state: 'assigned' },
      { hostname: 'vm-c', state: 'assigned' },
    ]);
  });

  it('logs and skips payloads that do not name a VM and its state, and keeps listening', async () => {
    for (const payload of [
      'not json',
      'null',
      '["vm-x"]',
      JSON.stringify({ hostname: 5, state: 'assigned' }),
      JSON.stringify({ hostname: 'vm-y' }),
    ]) {
      await notify(payload);
    }
    await notify(JSON.stringify({ hostname: 'vm-ok', state: 'assigned', extra: 'ignored' }));
    await waitFor(() => updates.length === 1, 'the good notification');
    expect(updates).toEqual([{ hostname: 'vm-ok', state: 'assigned' }]);
    expect(log.events.filter((entry) => entry.event === 'listener.bad_payload')).toHaveLength(5);
    expect(listened).toBe(1);
    expect(listener.isListening).toBe(true);
  });
});
