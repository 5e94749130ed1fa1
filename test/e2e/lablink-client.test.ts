import { KEPT_LOG_LINES_PER_VM } from '../../contract/wire';
import { CANNOT_RESET, resetVms } from '../../store/reset';
import { readVmLogs } from '../../store/vm-logs';
import { SLOW_SETUP_SECONDS } from '../../web/vm-page';
import { TEST_ADMIN_SECRET, TEST_FLEET_TOKEN, crdCommand, waitFor } from '../support/fixtures';
import { TestStack, freeCount, startTestStack, submitForm } from '../support/stack';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;

/** What LabLink's own client VM sends: bare JSON bodies with its fleet token, nothing of this project's agent. */
function asLablinkClient(env: TestStack, path: string, body: object, token = TEST_FLEET_TOKEN): Promise<Response> {
  return fetch(`${env.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
}

async function row(env: TestStack, hostname: string) {
  const { rows } = await env.db.pool.query(
    `SELECT state, crd_command, boot_id, crd_running, gpu_status, in_use, health_reported_at IS NOT NULL AS heartbeat, step FROM vms WHERE hostname = $1`,
    [hostname],
  );
  return rows[0];
}

describe("LabLink's own client against the real allocator (fleet token)", () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 20, unreportedDeliveryFinalSeconds: 1 });
  });
  afterAll(async () => env?.close());

  it('runs the whole flow: status, long-poll, assignment, health, logs, and the end without an outcome report', async () => {
    const vm = 'lablink-client-vm-0';
    expect((await asLablinkClient(env, '/api/vm-status', { hostname: vm, status: 'initializing' })).status).toBe(200);
    const poll = asLablinkClient(env, '/vm_startup', { hostname: vm });
    await waitFor(async () => (await row(env, vm))?.state === 'waiting' && env.stack.allocator.holds.size === 1, 'the held poll');

    const form = await submitForm(env.url, { email: 'ada@example.com', crd_command: crdCommand() });
    expect(form.status).toBe(200);
    const { status } = (await form.json()) as { status: string };
    const answer = await poll;
    expect(answer.status).toBe(200);
    const delivery = (await answer.json()) as { status: string; pin: string; command: string };
    expect(delivery.status).toBe('success');
    expect(delivery.pin).toMatch(/^\d{6,}$/);
    expect(delivery.command).toContain('--code=');

    expect(
      (
        await asLablinkClient(env, '/api/heartbeat', {
          vm_id: vm,
          boot_id: '3f2d1c4e-0000-4000-8000-000000000001',
          timestamp: new Date().toISOString(),
          crd_active: true,
          docker_healthy: true,
          disk_free_pct: 71,
        })
      ).status,
    ).toBe(200);
    expect((await asLablinkClient(env, '/api/gpu_health', { hostname: vm, gpu_status: 'Unhealthy' })).status).toBe(200);
    expect((await asLablinkClient(env, '/api/update_inuse_status', { hostname: vm, status: true })).status).toBe(200);
    expect(
      (await asLablinkClient(env, `/api/vm-metrics/${vm}`, { cloud_init_start: 1, cloud_init_end: 95, cloud_init_duration_seconds: 94 }))
        .status,
    ).toBe(200);
    const logs = await asLablinkClient(env, '/api/vm-logs', {
      log_group: 'lablink-cloud-init',
      log_stream: vm,
      messages: [
        'Pulling image',
        'ERROR: docker pull failed',
        'forged\n2026-12-01 INFO all good\u001b[2J',
        'c1 \u009b2J and bidi \u202egnp.exe\u2066',
      ],
    });
    expect(await logs.json()).toEqual({ message: 'VM logs posted successfully.' });

    expect(await row(env, vm)).toEqual({
      state: 'delivered',
      crd_command: expect.stringContaining('--code='),
      boot_id: '3f2d1c4e-0000-4000-8000-000000000001',
      crd_running: true,
      gpu_status: 'failed',
      in_use: true,
      heartbeat: true,
      step: 'initializing',
    });
    const stored = (await readVmLogs(env.db.sql, vm))!.lines.map(({ level, text }) => ({ level, text }));
    expect(stored).toEqual([
      { level: 'info', text: 'The boot script took 94 s.' },
      { level: 'info', text: 'Pulling image' },
      { level: 'error', text: 'ERROR: docker pull failed' },
      { level: 'info', text: 'forged\\n2026-12-01 INFO all good\\u001b[2J' },
      { level: 'info', text: 'c1 \\u009b2J and bidi \\u202egnp.exe\\u2066' },
    ]);

    // The client never reports how start-host ended: after the bounded time the delivery is final.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await env.stack.allocator.doctor!.tick();
    expect(await row(env, vm)).toMatchObject({ state: 'configured' });
    const page = (await (await fetch(`${env.url}${status}`)).json()) as { progress: string; message: string };
    expect(page.progress).toBe('ready');
    expect(page.message).toContain(vm);

    // The client restarts (its container, say) and polls again: answered at once with the same PIN and command, as LabLink does.
    const again = await asLablinkClient(env, '/vm_startup', { hostname: vm });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ status: 'success', pin: delivery.pin, command: delivery.command });
    expect(await row(env, vm)).toMatchObject({ state: 'configured' });
    // Released, the command is gone and a poll waits again.
    await resetVms(env.db.sql, { scope: 'one', hostname: vm });
    expect(await row(env, vm)).toMatchObject({ crd_command: null });
  });

  it("a VM running LabLink's client, released, is taken out of the pool (it cannot reset itself) and its participant is told", async () => {
    const vm = 'lablink-client-vm-2';
    const poll = asLablinkClient(env, '/vm_startup', { hostname: vm });
    await waitFor(async () => (await row(env, vm))?.state === 'waiting', 'the held poll');
    await env.db.pool.query(`UPDATE vms SET alive_until = now() WHERE hostname <> $1 AND state = 'waiting'`, [vm]);
    const form = await submitForm(env.url, { email: 'lin@example.com', crd_command: crdCommand() });
    const { status } = (await form.json()) as { status: string };
    expect((await poll).status).toBe(200);

    expect(await resetVms(env.db.sql, { scope: 'one', hostname: vm })).toEqual([
      { hostname: vm, previousEmail: 'lin@example.com', resetting: false, failure: CANNOT_RESET },
    ]);
    const { rows } = await env.db.pool.query(`SELECT state, email, failed_at IS NOT NULL AS failed FROM vms WHERE hostname = $1`, [vm]);
    expect(rows).toEqual([{ state: 'waiting', email: null, failed: true }]);
    expect(await freeCount(env.url)).toBe(0);
    expect(((await (await fetch(`${env.url}${status}`)).json()) as { progress: string }).progress).toBe('released');
    const takenBack = await (await fetch(`${env.url}${status.replace('/api/assignment/', '/vm/')}`)).text();
    expect(takenBack).toContain('It cannot wipe itself, so what you left on it stays there until the instructor replaces it');
    expect(takenBack).not.toContain('It is wiped for the next participant');
    const dashboard = await (await fetch(`${env.url}/admin`, { headers: { authorization: ADMIN } })).text();
    expect(dashboard).toContain('it rejoins the pool when its heartbeat reports a new boot');
    const resetPage = await fetch(`${env.url}/admin/vms/${vm}/reset`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(resetPage.status).toBe(409);
    const refusal = await resetPage.text();
    expect(refusal).toContain('it rejoins the pool when its heartbeat reports a new boot');
    expect(refusal).not.toContain('Re-run its setup');

    // Heartbeats of the same boot change nothing; the first of a new boot brings it back, and its log says so.
    const heartbeat = (bootId: string) => asLablinkClient(env, '/api/heartbeat', { vm_id: vm, boot_id: bootId, crd_active: true });
    expect((await heartbeat('b0000000-0000-4000-8000-000000000001')).status).toBe(200);
    await env.db.pool.query(`UPDATE vms SET boot_id = 'b0000000-0000-4000-8000-000000000001' WHERE hostname = $1`, [vm]);
    expect((await heartbeat('b0000000-0000-4000-8000-000000000001')).status).toBe(200);
    expect((await env.db.pool.query(`SELECT failed_at IS NOT NULL AS failed FROM vms WHERE hostname = $1`, [vm])).rows).toEqual([
      { failed: true },
    ]);
    expect((await heartbeat('b0000000-0000-4000-8000-000000000002')).status).toBe(200);
    expect((await env.db.pool.query(`SELECT failed_at IS NOT NULL AS failed, failure FROM vms WHERE hostname = $1`, [vm])).rows).toEqual([
      { failed: false, failure: null },
    ]);
    expect((await readVmLogs(env.db.sql, vm))!.lines.map((line) => line.text)).toContain(
      'A new boot after its release: the VM is back in the pool.',
    );
    const next = asLablinkClient(env, '/vm_startup', { hostname: vm });
    await waitFor(async () => (await freeCount(env.url)) === 1, 'the VM back in the pool');
    expect((await submitForm(env.url, { email: 'noor@example.com', crd_command: crdCommand() })).status).toBe(200);
    expect((await next).status).toBe(200);
  });

  it("leaves a delivery to this project's agent (which reports) alone after the same time", async () => {
    const vm = 'reporting-agent-vm';
    const poll = asLablinkClient(env, '/vm_startup', { hostname: vm, reportsOutcome: true });
    await waitFor(async () => (await row(env, vm))?.state === 'waiting', 'the held poll');
    await env.db.pool.query(`UPDATE vms SET alive_until = now() WHERE hostname <> $1 AND state = 'waiting'`, [vm]);
    expect((await submitForm(env.url, { email: 'grace@example.com', crd_command: crdCommand() })).status).toBe(200);
    expect((await poll).status).toBe(200);
    await waitFor(async () => (await row(env, vm)).state === 'delivered', 'the delivery mark');
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await env.stack.allocator.doctor!.tick();
    expect(await row(env, vm)).toMatchObject({ state: 'delivered', crd_command: expect.stringContaining('--code=') });
  });

  it('keeps the boot log however many retry lines the client logs while it waits', async () => {
    const vm = 'lablink-client-vm-3';
    expect((await asLablinkClient(env, '/api/vm-status', { hostname: vm, status: 'initializing' })).status).toBe(200);
    const boot = Array.from({ length: 60 }, (_, n) => `cloud-init boot line ${n}`);
    expect((await asLablinkClient(env, '/api/vm-logs', { log_stream: vm, messages: boot })).status).toBe(200);
    // About two hours of 204 answers, five retry lines each.
    const retries = Array.from(
      { length: 100 },
      (_, n) => `2026-12-04 10:${String(n % 60).padStart(2, '0')}:00 INFO Received 204, retrying in 10 seconds`,
    );
    for (let batch = 0; batch < 12; batch += 1)
      expect((await asLablinkClient(env, '/api/vm-logs', { log_stream: vm, messages: retries })).status).toBe(200);
    const texts = (await readVmLogs(env.db.sql, vm))!.lines.map((line) => line.text);
    expect(texts).toHaveLength(KEPT_LOG_LINES_PER_VM);
    expect(texts.slice(0, boot.length)).toEqual(boot);
    expect(texts.at(-1)).toBe(retries.at(-1));
  });

  it('counts a delivery configured before the participant\'s page says "taking longer than usual"', async () => {
    const slow = await startTestStack({ holdSeconds: 20 });
    try {
      const vm = 'lablink-client-slow';
      const poll = asLablinkClient(slow, '/vm_startup', { hostname: vm });
      await waitFor(async () => slow.stack.allocator.holds.size === 1, 'the held poll');
      const { status } = (await (await submitForm(slow.url, { email: 'kim@example.com', crd_command: crdCommand() })).json()) as {
        status: string;
      };
      expect((await poll).status).toBe(200);
      await waitFor(async () => (await row(slow, vm))?.state === 'delivered', 'the delivery mark');
      // One doctor round (30 s in AWS) before the page would call it slow.
      const seconds = SLOW_SETUP_SECONDS - 30;
      await slow.db.pool.query(
        `UPDATE vms SET assigned_at = now() - make_interval(secs => $2), delivered_at = now() - make_interval(secs => $2) WHERE hostname = $1`,
        [vm, seconds],
      );
      await slow.stack.allocator.doctor!.tick();
      expect(await (await fetch(`${slow.url}${status}`)).json()).toMatchObject({ progress: 'ready', slow: false });
    } finally {
      await slow.close();
    }
  });

  it('refuses bad input with a clear 4xx and changes nothing', async () => {
    const vm = 'lablink-client-vm-1';
    expect((await asLablinkClient(env, '/api/vm-status', { hostname: vm, status: 'running' })).status).toBe(200);
    const before = await row(env, vm);
    const cases: [string, object, number, string][] = [
      ['/api/vm-status', { hostname: vm, status: 'exploded' }, 400, 'Send "status"'],
      ['/api/heartbeat', { vm_id: vm, boot_id: 'not a boot id!' }, 400, '"boot_id"'],
      ['/api/heartbeat', { vm_id: 'no-such-vm' }, 404, 'Unknown hostname.'],
      ['/api/gpu_health', { hostname: vm, gpu_status: 'Fine' }, 400, '"gpu_status"'],
      ['/api/update_inuse_status', { hostname: vm, status: 'yes' }, 400, '"status"'],
      [`/api/vm-metrics/${vm}`, { cloud_init_duration_seconds: 'long' }, 400, 'number of seconds'],
      ['/api/vm-logs', { log_stream: vm, messages: 'one line' }, 400, '"messages"'],
      ['/api/vm-logs', { log_stream: vm, messages: Array.from({ length: 101 }, () => 'x') }, 400, 'at most 100'],
      ['/api/gpu_health', { gpu_status: 'Healthy' }, 400, 'Send "hostname"'],
      ['/api/vm-status', { hostname: vm }, 400, 'Send "status": one of initializing, running, error, unknown.'],
      ['/api/gpu_health', { hostname: vm, gpu_status: 'toString' }, 400, 'Send "gpu_status": "Healthy", "Unhealthy" or "N/A".'],
      [`/api/vm-metrics/${vm}`, { unrelated: 1 }, 400, 'Send "cloud_init_duration_seconds" or "container_startup_duration_seconds".'],
      ['/api/vm-logs', { log_stream: vm, messages: ['one line', 2] }, 400, 'Send "messages": a list of log lines (strings).'],
      ['/api/vm-logs', { log_stream: 'no-such-vm', messages: ['one line'] }, 404, 'Unknown hostname.'],
      ['/api/vm-metrics/no-such-vm', { cloud_init_duration_seconds: 3 }, 404, 'Unknown hostname.'],
    ];
    for (const [path, body, status, message] of cases) {
      const response = await asLablinkClient(env, path, body);
      expect({ path, status: response.status }).toEqual({ path, status });
      expect(((await response.json()) as { error: string }).error).toContain(message);
    }
    const wrongToken = await asLablinkClient(env, '/api/update_inuse_status', { hostname: vm, status: true }, 'not-the-fleet-token-at-all');
    expect(wrongToken.status).toBe(403);
    expect(await row(env, vm)).toEqual(before);
    expect(await row(env, 'no-such-vm')).toBeUndefined();
    expect((await readVmLogs(env.db.sql, vm))!.lines).toEqual([]);
  });
});
