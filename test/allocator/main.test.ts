import path from 'node:path';
import { freePort } from '../../local/postgres';
import { TestDatabase, createTestDatabase } from '../support/database';
import { TEST_FLEET_TOKEN, waitFor } from '../support/fixtures';
import { ALLOCATOR_PROCESS, CapturedProcess, spawnCapturing } from '../support/processes';
import { pollAsVm } from '../support/stack';

const ROOT = path.join(__dirname, '..', '..');

function startAllocator(env: Record<string, string>): CapturedProcess {
  return spawnCapturing(ALLOCATOR_PROCESS.command, ALLOCATOR_PROCESS.args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH, ...env },
  });
}

describe('the allocator service process (as on Fargate)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  it('logs JSON, holds polls, and on SIGTERM answers held VMs 204 before exiting cleanly', async () => {
    const port = await freePort();
    const allocator = startAllocator({
      PORT: String(port),
      LABLINK_DATABASE_URL: db.appUrl,
      LABLINK_FLEET_TOKEN: TEST_FLEET_TOKEN,
      LABLINK_HOLD_SECONDS: '120',
    });
    const url = `http://127.0.0.1:${port}`;
    await waitFor(() => allocator.output().includes('allocator.started'), 'the allocator to start');
    const started = JSON.parse(
      allocator
        .output()
        .split('\n')
        .find((line) => line.includes('allocator.started'))!,
    );
    expect(started).toMatchObject({ level: 'info', event: 'allocator.started', port, holdSeconds: 120 });

    const held = pollAsVm(url, 'fargate-vm-1');
    await waitFor(
      async () => ((await (await fetch(`${url}/api/health`)).json()) as { heldPolls: number }).heldPolls === 1,
      'the poll to be held',
    );
    allocator.child.kill('SIGTERM');
    expect((await held).status).toBe(204);
    expect(await allocator.exited).toBe(0);
    expect(allocator.output()).not.toContain(TEST_FLEET_TOKEN);
  });

  it('answers health checks 503 "starting" until it has reached its database', async () => {
    const port = await freePort();
    const unreachable = `postgres://postgres:x@127.0.0.1:${await freePort()}/lablink`;
    const allocator = startAllocator({ PORT: String(port), LABLINK_DATABASE_URL: unreachable, LABLINK_FLEET_TOKEN: TEST_FLEET_TOKEN });
    try {
      const response = await waitFor(() => fetch(`http://127.0.0.1:${port}/api/health`).catch(() => undefined), 'the allocator to answer');
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ status: 'starting', listening: false });
    } finally {
      allocator.child.kill('SIGTERM');
    }
    expect(await allocator.exited).toBe(0);
  });

  it('refuses to start without a fleet token or a database, naming what is missing', async () => {
    const allocator = startAllocator({ LABLINK_HOLD_SECONDS: 'forever' });
    expect(await allocator.exited).toBe(1);
    expect(allocator.output()).toContain('LABLINK_FLEET_TOKEN must be set');
    expect(allocator.output()).toContain('LABLINK_HOLD_SECONDS must be a whole number');
    expect(allocator.output()).toContain('Set LABLINK_DATABASE_URL');
  });

  it('refuses a spares group without EC2 identity, and a bad replacement limit', async () => {
    const allocator = startAllocator({ LABLINK_SPARES_GROUP: 'LabLink-Spares', LABLINK_MAX_REPLACEMENTS: '99' });
    expect(await allocator.exited).toBe(1);
    expect(allocator.output()).toContain('LABLINK_SPARES_GROUP needs LABLINK_IDENTITY_MODE=ec2');
    expect(allocator.output()).toContain('LABLINK_MAX_REPLACEMENTS must be a whole number from 0 to 20');
  });
});
