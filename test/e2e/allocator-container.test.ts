import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../local/postgres';
import { TestDatabase, createTestDatabase } from '../support/database';
import { TEST_FLEET_TOKEN, waitFor } from '../support/fixtures';

const ROOT = path.join(__dirname, '..', '..');

describe('the allocator bundle the container image runs (npm run build:allocator)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  it('builds into one file that starts and answers its health check', async () => {
    execFileSync('npm', ['run', '--silent', 'build:allocator'], { cwd: ROOT, stdio: 'pipe' });
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'allocator.js')], {
      env: { PATH: process.env.PATH, PORT: String(port), LABLINK_DATABASE_URL: db.appUrl, LABLINK_FLEET_TOKEN: TEST_FLEET_TOKEN },
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // It answers health checks at once, and says when its LISTEN connection is in place.
      const health = await waitFor(async () => {
        const response = await fetch(`http://127.0.0.1:${port}/api/health`).catch(() => undefined);
        const body = response?.ok && ((await response.json()) as { status: string; listening: boolean });
        return body && body.listening && body;
      }, 'the bundled allocator to answer and listen');
      expect(health).toMatchObject({ status: 'ok', listening: true });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
