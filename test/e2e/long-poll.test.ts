import http from 'node:http';
import type { Socket } from 'node:net';
import { LOCAL_KEEP_ALIVE_SECONDS } from '../../local/stack';
import { requestVm } from '../../store/assignment';
import { crdCommand, waitFor } from '../support/fixtures';
import { TestStack, pollAsVm, startTestStack, submitForm } from '../support/stack';

/** Takes every other VM out of the free pool, so the next assignment goes to `hostname`. */
async function leaveOnlyFree(env: TestStack, hostname: string) {
  await env.db.pool.query(`UPDATE vms SET alive_until = now() WHERE hostname <> $1`, [hostname]);
}

async function assign(env: TestStack, email: string) {
  const result = await requestVm(env.db.sql, { email, crdCommand: crdCommand() });
  if (result.kind !== 'assigned') throw new Error(`expected an assignment, got ${result.kind}`);
  return result;
}

async function reportOutcome(env: TestStack, body: object) {
  return fetch(`${env.url}/vm_status`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer test-fleet-token-0123456789' },
    body: JSON.stringify(body),
  });
}

describe('allocator long-poll with a short hold', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 1, aliveGraceSeconds: 30 });
  });
  afterAll(async () => env?.close());

  it('registers a new VM and answers 204 with no body when the hold ends with nothing to deliver', async () => {
    const response = await pollAsVm(env.url, 'short-1');
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');
    const { rows } = await env.db.pool.query(`SELECT state FROM vms WHERE hostname = 'short-1'`);
    expect(rows).toEqual([{ state: 'waiting' }]);
  });

  it('delivers an assignment made between two polls on the next poll, again until the agent reports', async () => {
    expect((await pollAsVm(env.url, 'short-2')).status).toBe(204);
    await leaveOnlyFree(env, 'short-2');
    const assigned = await assign(env, 'between@example.com');
    expect(assigned.hostname).toBe('short-2');

    const first = await pollAsVm(env.url, 'short-2');
    expect(first.status).toBe(200);
    const body = (await first.json()) as { status: string; pin: string; command: string; assignment: string };
    expect(body).toMatchObject({ status: 'success', pin: assigned.pin });
    expect(typeof body.pin).toBe('string');
    expect(body.command).toMatch(/^DISPLAY= \/opt\/google\/chrome-remote-desktop\/start-host --code="4\//);

    // Unacknowledged: the same assignment comes again (at-least-once delivery).
    const again = await pollAsVm(env.url, 'short-2');
    expect(again.status).toBe(200);
    expect(((await again.json()) as { assignment: string }).assignment).toBe(body.assignment);

    const report = await reportOutcome(env, { hostname: 'short-2', assignment: body.assignment, outcome: 'configured' });
    expect(report.status).toBe(200);
    expect(await report.json()).toEqual({ state: 'configured' });
    expect((await pollAsVm(env.url, 'short-2')).status).toBe(204);
    const { rows } = await env.db.pool.query(`SELECT state, crd_command FROM vms WHERE hostname = 'short-2'`);
    expect(rows).toEqual([{ state: 'configured', crd_command: null }]);
  });

  it('refuses a report for an assignment the VM does not have', async () => {
    expect((await pollAsVm(env.url, 'short-3')).status).toBe(204);
    const response = await reportOutcome(env, {
      hostname: 'short-3',
      assignment: '00000000-0000-4000-8000-000000000000',
      outcome: 'configured',
    });
    expect(response.status).toBe(409);
    expect(((await response.json()) as { error: string }).error).toMatch(/no such assignment/);
  });
});

describe('allocator long-poll held open', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 30, aliveGraceSeconds: 30 });
  });
  afterAll(async () => env?.close());

  async function heldPolls(): Promise<number> {
    const health = (await (await fetch(`${env.url}/api/health`)).json()) as { heldPolls: number; listening: boolean };
    return health.heldPolls;
  }

  it('wakes only the assigned VM’s held request when the trigger notifies', async () => {
    const polls = ['held-1', 'held-2'].map((name) => ({ name, controller: new AbortController() }));
    const responses = polls.map(({ name, controller }) => pollAsVm(env.url, name, { signal: controller.signal }));
    await waitFor(async () => (await heldPolls()) === 2, 'both polls to be held');

    const assigned = await assign(env, 'woken@example.com');
    const index = polls.findIndex((poll) => poll.name === assigned.hostname);
    const response = await responses[index];
    expect(response.status).toBe(200);
    expect(((await response.json()) as { pin: string }).pin).toBe(assigned.pin);

    expect(await heldPolls()).toBe(1);
    const other = polls[1 - index];
    other.controller.abort();
    await expect(responses[1 - index]).rejects.toThrow();
    await waitFor(async () => (await heldPolls()) === 0, 'the aborted poll to be released');
  });

  it('reconnects its LISTEN connection and delivers an assignment made while it was gone', async () => {
    const held = pollAsVm(env.url, 'held-3');
    await waitFor(async () => (await heldPolls()) === 1, 'the poll to be held');

    const { rows } = await env.db.pool.query(
      `SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'`,
    );
    expect(rows).toEqual([{ terminated: true }]);
    await leaveOnlyFree(env, 'held-3');
    const assigned = await assign(env, 'gap@example.com');
    expect(assigned.hostname).toBe('held-3');

    const response = await held;
    expect(response.status).toBe(200);
    expect(((await response.json()) as { pin: string }).pin).toBe(assigned.pin);
    const health = (await (await fetch(`${env.url}/api/health`)).json()) as { listening: boolean };
    expect(health.listening).toBe(true);
  });

  it('answers a held VM "nothing yet" on shutdown so the agent polls again', async () => {
    const held = pollAsVm(env.url, 'held-4');
    await waitFor(async () => (await heldPolls()) === 1, 'the poll to be held');
    env.stack.allocator.holds.endAll();
    expect((await held).status).toBe(204);
  });
});

describe('what local mode keeps open when quiet (real PostgreSQL)', () => {
  it('keeps an idle client connection for a minute, so a page asking every 30 s reuses it', async () => {
    const env = await startTestStack();
    try {
      const agent = new http.Agent({ keepAlive: true });
      const ask = () =>
        new Promise<{ socket: Socket; keepAlive?: string }>((resolve, reject) => {
          http
            .get(`${env.url}/api/health`, { agent }, (response) => {
              response.resume();
              response.once('end', () => resolve({ socket: response.socket, keepAlive: String(response.headers['keep-alive']) }));
            })
            .once('error', reject);
        });
      const first = await ask();
      expect(first.keepAlive).toBe(`timeout=${LOCAL_KEEP_ALIVE_SECONDS}`);
      // Past Node's default of 5 s, the same connection still answers.
      await new Promise((resolve) => setTimeout(resolve, 5_500));
      const second = await ask();
      expect(second.socket).toBe(first.socket);
      agent.destroy();
    } finally {
      await env.close();
    }
  });

  it('keeps 12 when quiet, none more for one participant after another: the allocator 10, its LISTEN 1, the form 1', async () => {
    const env = await startTestStack({ holdSeconds: 30 });
    const connections = async () =>
      Object.fromEntries(
        (
          await env.db.pool.query<{ name: string; count: number }>(
            `SELECT application_name AS name, count(*)::int AS count FROM pg_stat_activity
             WHERE datname = current_database() AND application_name IN ('lablink-allocator', 'lablink-allocator-listen', 'lablink-web') GROUP BY 1`,
          )
        ).rows.map((row) => [row.name, row.count]),
      );
    const kept = { 'lablink-allocator': 10, 'lablink-allocator-listen': 1, 'lablink-web': 1 };
    try {
      expect(await connections()).toEqual(kept);
      for (const [index, hostname] of ['kept-1', 'kept-2'].entries()) {
        const poll = pollAsVm(env.url, hostname);
        await waitFor(() => env.stack.allocator.holds.size === 1, 'the poll to be held');
        const response = await submitForm(env.url, { email: `kept-${index}@example.com`, crd_command: crdCommand() });
        expect(response.status).toBe(200);
        expect((await poll).status).toBe(200);
      }
      expect(await connections()).toEqual(kept);
    } finally {
      await env.close();
    }
  });
});
