import { requestVm } from '../../store/assignment';
import { createLogger } from '../../core/log';
import { TEST_FLEET_TOKEN, crdCommand } from '../support/fixtures';
import { TestStack, pollAsVm, startTestStack } from '../support/stack';

/** Text meant to forge a second log line, clear the terminal and recolour it (ESC and the one-byte C1 CSI). */
const HOSTILE = 'boom\n12:00:00 vm.configured hostname=other-vm\r\u001b[2J\u009b31m\u202eevil';

function postAsVm(url: string, route: string, body: object): Promise<Response> {
  return fetch(`${url}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_FLEET_TOKEN}` },
    body: JSON.stringify(body),
  });
}

describe('text an agent sends, at the real local allocator', () => {
  let env: TestStack;
  const lines: string[] = [];

  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 1, log: createLogger('text', (line) => lines.push(line)) });
    expect((await pollAsVm(env.url, 'text-vm')).status).toBe(204);
  });
  afterAll(async () => env?.close());
  beforeEach(() => {
    lines.length = 0;
  });

  it('refuses a health report with a NUL byte with a 400 that says so, and stores nothing', async () => {
    const before = await env.db.dumpVms();
    const response = await postAsVm(env.url, '/vm_health', { hostname: 'text-vm', gpu: { status: 'failed', detail: 'GPU\u0000 is lost' } });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'Text in the body must not contain NUL characters (\\u0000).' });
    expect(await env.db.dumpVms()).toEqual(before);
  });

  it('refuses a NUL byte in an outcome report too, and the assignment stays unreported', async () => {
    await env.db.pool.query(`UPDATE vms SET alive_until = now() + interval '1 minute' WHERE hostname = 'text-vm'`);
    const assigned = await requestVm(env.db.sql, { email: 'nul@example.com', crdCommand: crdCommand() });
    if (assigned.kind !== 'assigned') throw new Error(`expected an assignment, got ${assigned.kind}`);
    const response = await postAsVm(env.url, '/vm_status', {
      hostname: 'text-vm',
      assignment: assigned.assignmentId,
      outcome: 'error',
      message: 'bad\u0000code',
    });
    expect(response.status).toBe(400);
    const { rows } = await env.db.pool.query(`SELECT state, error FROM vms WHERE hostname = 'text-vm'`);
    expect(rows).toEqual([{ state: 'assigned', error: null }]);
  });

  it('logs a GPU detail as one line with its control characters escaped', async () => {
    const response = await postAsVm(env.url, '/vm_health', { hostname: 'text-vm', gpu: { status: 'failed', detail: HOSTILE } });
    expect(response.status).toBe(200);
    expect(lines).toEqual([
      expect.stringMatching(
        /^\d\d:\d\d:\d\d WARN vm\.gpu_failed hostname=text-vm reason=boom\\n12:00:00 vm\.configured hostname=other-vm\\r\\u001b\[2J\\u009b31m\\u202eevil$/,
      ),
    ]);
  });

  it('logs an agent’s failure message as one line with its control characters escaped', async () => {
    const { rows } = await env.db.pool.query(`SELECT assignment_id FROM vms WHERE hostname = 'text-vm'`);
    const response = await postAsVm(env.url, '/vm_status', {
      hostname: 'text-vm',
      assignment: rows[0].assignment_id,
      outcome: 'error',
      message: HOSTILE,
    });
    expect(response.status).toBe(200);
    const failure = lines.filter((line) => line.includes('vm.configuration_failed'));
    expect(failure).toEqual([
      expect.stringContaining('reason=boom\\n12:00:00 vm.configured hostname=other-vm\\r\\u001b[2J\\u009b31m\\u202eevil'),
    ]);
    for (const line of lines) expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
  });

  it('keeps JSON log lines valid JSON that carries the text unchanged, with no raw control characters', () => {
    const jsonLines: string[] = [];
    createLogger('json', (line) => jsonLines.push(line)).warn('vm.gpu_failed', { hostname: 'text-vm', reason: HOSTILE });
    expect(jsonLines).toHaveLength(1);
    expect(jsonLines[0]).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(JSON.parse(jsonLines[0])).toMatchObject({ level: 'warn', event: 'vm.gpu_failed', hostname: 'text-vm', reason: HOSTILE });
  });
});
