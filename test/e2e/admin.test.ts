import { requestVm } from '../../store/assignment';
import { recordPoll } from '../../store/vms';
import { TEST_ADMIN_SECRET, TEST_FLEET_TOKEN, crdCommand } from '../support/fixtures';
import { recordingLogger } from '../support/recording-logger';
import { TestStack, freeCount, startTestStack } from '../support/stack';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const ADMIN = basic('admin', TEST_ADMIN_SECRET);

/** The notice the dashboard shows after an action's redirect: it travels in a cookie, never in the URL. */
async function noticeAfter(url: string, redirect: Response): Promise<string | undefined> {
  expect(redirect.headers.get('location')).toBe('/admin');
  const cookie = redirect.headers.get('set-cookie')!.split(';')[0];
  const page = await (await fetch(`${url}/admin`, { headers: { authorization: ADMIN, cookie } })).text();
  return /<p class="ok" role="status">([^<]*)<\/p>/.exec(page)?.[1];
}

/** What the VM's agent says once it has wiped itself. */
function reportResetDone(url: string, hostname: string): Promise<Response> {
  return fetch(`${url}/vm_reset`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_FLEET_TOKEN}` },
    body: JSON.stringify({ hostname, outcome: 'done' }),
  });
}

describe('admin API and dashboard over HTTP', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack({ expiresAt: new Date(Date.now() + (2 * 60 + 30) * 60_000).toISOString() });
  });
  afterAll(async () => env?.close());
  beforeEach(async () => {
    await env.db.pool.query('DELETE FROM vms');
    await env.db.pool.query('DELETE FROM assignment_history');
    for (const name of ['adm-vm-1', 'adm-vm-2', 'adm-vm-10']) await recordPoll(env.db.sql, name, 60);
  });

  it.each([
    ['no credentials', undefined],
    ['a wrong password', basic('admin', 'not-the-secret-at-all')],
    ['a wrong user', basic('root', TEST_ADMIN_SECRET)],
  ])('refuses %s with 401 on every admin route', async (_case, authorization) => {
    const headers: Record<string, string> = authorization ? { authorization } : {};
    for (const [method, path] of [
      ['GET', '/admin'],
      ['GET', '/api/vms'],
      ['GET', '/api/vms.csv'],
      ['POST', '/api/vms/adm-vm-1/release'],
      ['POST', '/api/fleet/end-session'],
    ]) {
      const response = await fetch(`${env.url}${path}`, { method, headers });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Basic realm="LabLink admin"/);
    }
  });

  it('lists every VM in natural order without CRD commands or PINs', async () => {
    const assigned = await requestVm(env.db.sql, { email: 'alice@example.com', crdCommand: crdCommand() });
    if (assigned.kind !== 'assigned') throw new Error('expected an assignment');
    const response = await fetch(`${env.url}/api/vms`, { headers: { authorization: ADMIN } });
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).not.toContain(assigned.pin);
    expect(text).not.toContain('--code');
    const { vms } = JSON.parse(text) as { vms: { hostname: string; state: string; email: string | null; polling: boolean }[] };
    expect(vms.map((vm) => vm.hostname)).toEqual(['adm-vm-1', 'adm-vm-2', 'adm-vm-10']);
    expect(vms.find((vm) => vm.hostname === assigned.hostname)).toMatchObject({
      state: 'assigned',
      email: 'alice@example.com',
      polling: true,
    });
  });

  it('releases a VM, which counts as free again once its agent has reset it, and says so for an unknown one', async () => {
    const assigned = await requestVm(env.db.sql, { email: 'bob@example.com', crdCommand: crdCommand() });
    if (assigned.kind !== 'assigned') throw new Error('expected an assignment');
    expect(await freeCount(env.url)).toBe(2);
    const response = await fetch(`${env.url}/api/vms/${assigned.hostname}/release`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ hostname: assigned.hostname, state: 'resetting', previousEmail: 'bob@example.com' });
    expect(await freeCount(env.url)).toBe(2);
    expect((await reportResetDone(env.url, assigned.hostname)).status).toBe(200);
    expect(await freeCount(env.url)).toBe(3);
    const { rows } = await env.db.pool.query('SELECT email, pin, crd_command, assignment_id FROM vms WHERE hostname = $1', [
      assigned.hostname,
    ]);
    expect(rows[0]).toEqual({ email: null, pin: null, crd_command: null, assignment_id: null });

    const before = await env.db.dumpVms();
    const unknown = await fetch(`${env.url}/api/vms/no-such-vm/release`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(unknown.status).toBe(404);
    expect(await env.db.dumpVms()).toEqual(before);
  });

  it('shows health, and how long until the fleet stops', async () => {
    await env.db.pool.query(
      `UPDATE vms SET failed_at = now(), failure = 'GPU check failed: GPU is lost', reboot_count = 2 WHERE hostname = 'adm-vm-2'`,
    );
    const page = await (await fetch(`${env.url}/admin`, { headers: { authorization: ADMIN } })).text();
    expect(page).toMatch(/The fleet stops at .* \(in 2 h (29|30) min\)/);
    expect(page).toContain('3 VMs, 2 free, 1 failed');
    expect(page).toMatch(/health-failed">failed \(2 reboots\)/);
    expect(page).toContain('GPU check failed: GPU is lost');
    expect(page).toContain('href="/admin/vms/adm-vm-2/reset"');
    const back = await fetch(`${env.url}/api/vms/adm-vm-2/reset`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(await back.json()).toEqual({ hostname: 'adm-vm-2', state: 'resetting', previousEmail: null });
    expect(await freeCount(env.url)).toBe(2);
    await reportResetDone(env.url, 'adm-vm-2');
    expect(await freeCount(env.url)).toBe(3);
  });

  it('refuses to reset a VM whose workshop setup failed (its agent does not poll, so it would never hear it), and changes nothing', async () => {
    await env.db.pool.query(
      `UPDATE vms SET failed_at = now(), failure = 'Setup failed at setup-script: exit code 1' WHERE hostname = 'adm-vm-2'`,
    );
    const before = await env.db.dumpVms();
    const refused = await fetch(`${env.url}/api/vms/adm-vm-2/reset`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: string }).error).toBe(
      'adm-vm-2 cannot reset now: Setup failed at setup-script: exit code 1.',
    );
    expect(await env.db.dumpVms()).toEqual(before);
  });

  it('resets every released VM at once, and only those', async () => {
    const kept = await requestVm(env.db.sql, { email: 'kept@example.com', crdCommand: crdCommand() });
    if (kept.kind !== 'assigned') throw new Error('expected an assignment');
    await env.db.pool.query(
      `UPDATE vms SET failed_at = now(), failure = 'Reset failed: reset-stop-crd: systemctl exited with code 5' WHERE email IS NULL`,
    );
    const confirm = await (await fetch(`${env.url}/admin/fleet/reset-released`, { headers: { authorization: ADMIN } })).text();
    expect(confirm).toContain('2 VMs without a participant are out of the pool');
    const response = await fetch(`${env.url}/api/fleet/reset-released`, { method: 'POST', headers: { authorization: ADMIN } });
    const { resetting } = (await response.json()) as { resetting: string[] };
    expect(resetting.sort()).toEqual(['adm-vm-1', 'adm-vm-10', 'adm-vm-2'].filter((name) => name !== kept.hostname).sort());
    const { rows } = await env.db.pool.query(`SELECT hostname, state, email, failed_at FROM vms ORDER BY hostname`);
    for (const row of rows) {
      if (row.hostname === kept.hostname) expect(row).toMatchObject({ state: 'assigned', email: 'kept@example.com' });
      else expect(row).toMatchObject({ state: 'resetting', email: null, failed_at: null });
    }
  });

  it('ends the session: every VM is taken back and reset, from the dashboard after a confirmation', async () => {
    const alice = await requestVm(env.db.sql, { email: 'alice@example.com', crdCommand: crdCommand() });
    if (alice.kind !== 'assigned') throw new Error('expected an assignment');
    const confirm = await (await fetch(`${env.url}/admin/fleet/end-session`, { headers: { authorization: ADMIN } })).text();
    expect(confirm).toContain('All 3 VMs are taken back, <strong>1 participant</strong> among them lose their VM');
    const done = await fetch(`${env.url}/admin/fleet/end-session`, {
      method: 'POST',
      headers: { authorization: ADMIN, origin: env.url },
      redirect: 'manual',
    });
    expect(done.status).toBe(303);
    expect(await noticeAfter(env.url, done)).toBe('End of session: all VMs were taken back; 3 are being reset.');
    // A link cannot make the dashboard show a notice of someone else's choosing.
    const crafted = await (await fetch(`${env.url}/admin?notice=Your%20password%20expired`, { headers: { authorization: ADMIN } })).text();
    expect(crafted).not.toContain('Your password expired');
    const { rows } = await env.db.pool.query(`SELECT DISTINCT state, email FROM vms`);
    expect(rows).toEqual([{ state: 'resetting', email: null }]);
    expect(await freeCount(env.url)).toBe(0);
    const page = await (await fetch(`${env.url}/api/assignment/${alice.assignmentId}`)).json();
    expect(page).toMatchObject({ hostname: alice.hostname, progress: 'released' });
    const unknown = await fetch(`${env.url}/api/fleet/everything`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(unknown.status).toBe(404);
  });

  it('moves a participant to another VM in one action', async () => {
    const assigned = await requestVm(env.db.sql, { email: 'erin@example.com', crdCommand: crdCommand() });
    if (assigned.kind !== 'assigned') throw new Error('expected an assignment');
    const response = await fetch(`${env.url}/api/vms/${assigned.hostname}/move`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(response.status).toBe(200);
    const moved = (await response.json()) as { from: string; to: string; email: string };
    expect(moved).toMatchObject({ from: assigned.hostname, email: 'erin@example.com' });
    const page = await (await fetch(`${env.url}/vm/${assigned.assignmentId}`)).text();
    expect(page).toContain(`Your previous VM, ${assigned.hostname}, stopped working, so the instructor moved you to ${moved.to}.`);
    const again = await fetch(`${env.url}/api/vms/${assigned.hostname}/move`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(again.status).toBe(409);

    // A healthy old VM returns to the pool by itself once its agent has reset it: the rows, the tiles and the form agree.
    expect(await freeCount(env.url)).toBe(1);
    const reset = await reportResetDone(env.url, assigned.hostname);
    expect(await reset.json()).toEqual({ state: 'waiting', failed: false });
    expect(await freeCount(env.url)).toBe(2);
    const dashboard = await (await fetch(`${env.url}/admin`, { headers: { authorization: ADMIN } })).text();
    expect(dashboard).toContain(`<tr data-hostname="${assigned.hostname}" data-status="free">`);
    expect(dashboard).toMatch(/<span class="tile-count">2<\/span> <span class="tile-label">free<\/span>/);
  });

  it('sorts the dashboard by the query string both ways, marks the sorted column, and refuses an unknown column', async () => {
    const page = async (query: string) => (await fetch(`${env.url}/admin${query}`, { headers: { authorization: ADMIN } })).text();
    const order = (html: string) => [...html.matchAll(/<tr data-hostname="([^"]+)"/g)].map((match) => match[1]);
    const ascending = await page('?sort=hostname&dir=asc');
    expect(order(ascending)).toEqual(['adm-vm-1', 'adm-vm-2', 'adm-vm-10']);
    expect(ascending).toContain('<th scope="col" aria-sort="ascending"><a class="sort" href="/admin?sort=hostname&amp;dir=desc">VM');
    const descending = await page('?sort=hostname&dir=desc');
    expect(order(descending)).toEqual(['adm-vm-10', 'adm-vm-2', 'adm-vm-1']);
    expect(descending).toContain('<th scope="col" aria-sort="descending"><a class="sort" href="/admin?sort=hostname&amp;dir=asc">VM');
    expect((descending.match(/aria-sort=/g) ?? []).length).toBe(1);

    await env.db.pool.query(`UPDATE vms SET failed_at = now(), failure = 'GPU is lost' WHERE hostname = 'adm-vm-10'`);
    const byDefault = await page('');
    expect(order(byDefault)).toEqual(['adm-vm-10', 'adm-vm-1', 'adm-vm-2']);
    expect(byDefault).toContain('<tr data-hostname="adm-vm-10" data-status="failed" class="problem">');
    expect(byDefault).toMatch(
      /<li class="tile tile-problem" data-status="failed" title="[^"]+"><span class="tile-count">1<\/span> <span class="tile-label">failed<\/span><\/li><li class="tile" data-status="free" title="[^"]+"><span class="tile-count">2<\/span> <span class="tile-label">free<\/span>/,
    );
    expect(byDefault).toMatch(/<time datetime="[^"]+" title="[^"]+ UTC">(just now|\d+ s ago)<\/time>/);

    const refused = await fetch(`${env.url}/admin?sort=pin`, { headers: { authorization: ADMIN } });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toBe('"sort" must be one of hostname, state, email, health, assigned, seen.');
  });

  it('answers "move" with no free VM with a page saying so and what to do, and changes nothing', async () => {
    const assigned = await requestVm(env.db.sql, { email: 'fay@example.com', crdCommand: crdCommand() });
    if (assigned.kind !== 'assigned') throw new Error('expected an assignment');
    await env.db.pool.query(`UPDATE vms SET alive_until = now() WHERE state = 'waiting'`);
    const confirm = await (await fetch(`${env.url}/admin/vms/${assigned.hostname}/move`, { headers: { authorization: ADMIN } })).text();
    expect(confirm).toContain('No healthy VM is free right now, so moving would not work');
    const before = await env.db.dumpVms();
    const response = await fetch(`${env.url}/admin/vms/${assigned.hostname}/move`, {
      method: 'POST',
      headers: { authorization: ADMIN, origin: env.url },
    });
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const page = await response.text();
    expect(page).toContain('<h1>No free VM to move the participant to</h1>');
    expect(page).toContain(`so they stay on ${assigned.hostname}. Nothing was changed.`);
    expect(page).toContain('Release a VM nobody uses');
    expect(await env.db.dumpVms()).toEqual(before);
  });

  it('re-runs a VM’s setup: at once without a participant, refused while one is connected unless confirmed, and 404 for an unknown VM', async () => {
    const requested = async () =>
      (await env.db.pool.query(`SELECT hostname FROM vms WHERE setup_rerun_requested_at IS NOT NULL ORDER BY hostname`)).rows.map(
        (row) => row.hostname,
      );
    const free = await fetch(`${env.url}/api/vms/adm-vm-2/rerun-setup`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(free.status).toBe(200);
    expect(await free.json()).toEqual({ hostname: 'adm-vm-2', setupRerun: 'requested' });

    const dave = await requestVm(env.db.sql, { email: 'dave@example.com', crdCommand: crdCommand() });
    if (dave.kind !== 'assigned') throw new Error('expected an assignment');
    const refused = await fetch(`${env.url}/api/vms/${dave.hostname}/rerun-setup`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toEqual({ error: `dave@example.com has ${dave.hostname}, and re-running the setup may disturb them.` });
    expect(await requested()).toEqual(['adm-vm-2']);

    // The dashboard's confirmation page names the participant, and submitting it is the confirmation.
    const page = await (await fetch(`${env.url}/admin/vms/${dave.hostname}/rerun-setup`, { headers: { authorization: ADMIN } })).text();
    // Nobody has connected yet (no "in use" report): the page does not claim they did.
    expect(page).toContain('<strong>dave@example.com</strong> has this VM');
    expect(page).toContain('<input type="hidden" name="confirm" value="yes">');
    const confirmed = await fetch(`${env.url}/admin/vms/${dave.hostname}/rerun-setup`, {
      method: 'POST',
      headers: { authorization: ADMIN, origin: env.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'confirm=yes',
      redirect: 'manual',
    });
    expect(confirmed.status).toBe(303);
    expect(await noticeAfter(env.url, confirmed)).toBe(`${dave.hostname} runs its setup again when its agent next reports.`);
    expect(await requested()).toEqual(['adm-vm-2', dave.hostname].sort());

    const unknown = await fetch(`${env.url}/api/vms/adm-vm-99/rerun-setup`, { method: 'POST', headers: { authorization: ADMIN } });
    expect(unknown.status).toBe(404);
  });

  it('shows each VM’s progress with its step and how long it has been at it, and only "Re-run setup" for a failed setup', async () => {
    await env.db.pool.query(
      `UPDATE vms SET step = 'setup-script', step_at = now() - interval '3 minutes', alive_until = now() WHERE hostname = 'adm-vm-1'`,
    );
    await env.db.pool.query(
      `UPDATE vms SET step = 'setup-failed', step_at = now(), failed_at = now(), failure = 'Setup failed at setup-check: exited with status 1.' WHERE hostname = 'adm-vm-2'`,
    );
    await env.db.pool.query(`UPDATE vms SET step = 'waiting', step_at = now() WHERE hostname = 'adm-vm-10'`);
    const page = await (await fetch(`${env.url}/admin`, { headers: { authorization: ADMIN } })).text();
    const rowOf = (name: string) =>
      page.slice(page.indexOf(`<tr data-hostname="${name}"`), page.indexOf('</tr>', page.indexOf(`<tr data-hostname="${name}"`)));
    expect(rowOf('adm-vm-1')).toContain(
      '<span class="progress progress-setup-script">setup script</span> <small>setup-script · 3 min</small>',
    );
    // A free VM's last step ("waiting") is no news: its progress cell stays empty.
    expect(rowOf('adm-vm-1')).toContain('data-status="booting"');
    expect(rowOf('adm-vm-10')).not.toContain('class="progress');
    expect(rowOf('adm-vm-2')).toContain('<span class="progress progress-failed">failed</span>');
    expect(rowOf('adm-vm-2')).toContain('href="/admin/vms/adm-vm-2/rerun-setup"');
    expect(rowOf('adm-vm-2')).not.toContain('href="/admin/vms/adm-vm-2/reset"');
  });

  it('shows a failed VM waiting for a spare as "replacing" with no actions, and marks the spare that took a name', async () => {
    await env.db.pool.query(
      `UPDATE vms SET failed_at = now(), failure = 'The agent stopped reporting', replacement_requested_at = now() - interval '25 minutes' WHERE hostname = 'adm-vm-1'`,
    );
    await env.db.pool.query(
      `UPDATE vms SET spare = true, replaced_instance_id = 'i-0aaaaaaaaaaaaaaa2', instance_id = 'i-0eeeeeeeeeeeeeee1' WHERE hostname = 'adm-vm-2'`,
    );
    const page = await (await fetch(`${env.url}/admin`, { headers: { authorization: ADMIN } })).text();
    const rowOf = (name: string) =>
      page.slice(page.indexOf(`<tr data-hostname="${name}"`), page.indexOf('</tr>', page.indexOf(`<tr data-hostname="${name}"`)));
    // Since when: a spare boots in 5 to 10 minutes, so 25 minutes tells the instructor to look (docs/troubleshooting.md).
    expect(rowOf('adm-vm-1')).toMatch(
      /<td class="state" title="[^"]+">replacing <small>since <time datetime="[^"]+" title="[^"]+">25 min ago<\/time><\/small><\/td>/,
    );
    expect(rowOf('adm-vm-1')).toContain('<td class="actions" data-filter-skip></td>');
    expect(rowOf('adm-vm-2')).toContain('adm-vm-2 <small title="replaced i-0aaaaaaaaaaaaaaa2">spare</small>');
    expect(page).toContain('<span class="tile-count">1</span> <span class="tile-label">replacing</span>');
  });

  it('refuses a cross-site form post to the dashboard even with credentials', async () => {
    await requestVm(env.db.sql, { email: 'carol@example.com', crdCommand: crdCommand() });
    const before = await env.db.dumpVms();
    const response = await fetch(`${env.url}/admin/vms/adm-vm-1/release`, {
      method: 'POST',
      headers: { authorization: ADMIN, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    expect(response.status).toBe(403);
    expect(await env.db.dumpVms()).toEqual(before);
  });

  it('exports every assignment ever made as CSV and JSON (taken back and moved ones too), without commands or PINs, with formula-looking cells defused', async () => {
    const dave = await requestVm(env.db.sql, { email: 'dave@example.com', crdCommand: crdCommand() });
    const bob = await requestVm(env.db.sql, { email: 'bob@example.com', crdCommand: crdCommand() });
    if (dave.kind !== 'assigned' || bob.kind !== 'assigned') throw new Error('expected assignments');
    await env.db.pool.query(`UPDATE vms SET state = 'error', error = '=HYPERLINK("http://evil.example")' WHERE email = 'dave@example.com'`);
    await fetch(`${env.url}/api/vms/${bob.hostname}/release`, { method: 'POST', headers: { authorization: ADMIN } });
    await reportResetDone(env.url, bob.hostname);
    const moved = (await (
      await fetch(`${env.url}/api/vms/${dave.hostname}/move`, { method: 'POST', headers: { authorization: ADMIN } })
    ).json()) as { to: string };

    const response = await fetch(`${env.url}/api/vms.csv`, { headers: { authorization: ADMIN } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(response.headers.get('content-disposition')).toMatch(/attachment; filename="lablink-assignments.csv"/);
    const text = await response.text();
    expect(text).not.toContain(dave.pin);
    expect(text).not.toContain('--code');
    const lines = text.trim().split('\r\n');
    expect(lines[0]).toBe('hostname,email,assigned_at,ended_at,ended_how,moved_from,vm_state_now,vm_problem_now');
    const TIME = '\\d{4}-\\d\\d-\\d\\dT[^,]+';
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(new RegExp(`^${dave.hostname},dave@example.com,${TIME},${TIME},moved to ${moved.to},,,$`)),
      expect.stringMatching(new RegExp(`^${bob.hostname},bob@example.com,${TIME},${TIME},taken back,,,$`)),
      expect.stringMatching(new RegExp(`^${moved.to},dave@example.com,${TIME},,,${dave.hostname},waiting for command,`)),
    ]);

    const json = (await (await fetch(`${env.url}/api/assignments`, { headers: { authorization: ADMIN } })).json()) as {
      assignments: { email: string; moved_to: string | null }[];
    };
    expect(json.assignments.map((record) => [record.email, record.moved_to])).toEqual([
      ['dave@example.com', moved.to],
      ['bob@example.com', null],
      ['dave@example.com', null],
    ]);
  });

  it('defuses formula-looking cells in the CSV', async () => {
    await requestVm(env.db.sql, { email: 'dave@example.com', crdCommand: crdCommand() });
    await env.db.pool.query(`UPDATE vms SET state = 'error', error = '=HYPERLINK("http://evil.example")' WHERE email = 'dave@example.com'`);
    const text = await (await fetch(`${env.url}/api/vms.csv`, { headers: { authorization: ADMIN } })).text();
    const line = text.split('\r\n').find((candidate) => candidate.includes('dave@example.com'))!;
    expect(line).toMatch(/,connection failed,/);
    expect(line).toContain(`"'=HYPERLINK(""http://evil.example"")"`);
  });
});

describe('a reset that ends with the VM still out of the pool says why', () => {
  let env: TestStack;
  const log = recordingLogger();
  beforeAll(async () => {
    env = await startTestStack({ log });
  });
  afterAll(async () => env?.close());

  const reportReset = (hostname: string, body: object) =>
    fetch(`${env.url}/vm_reset`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_FLEET_TOKEN}` },
      body: JSON.stringify({ hostname, ...body }),
    });

  it('logs the agent’s reason for a failed reset, and the earlier failure of a broken VM moved off and reset', async () => {
    for (const name of ['why-vm-1', 'why-vm-2', 'why-vm-3']) await recordPoll(env.db.sql, name, 60);
    await fetch(`${env.url}/api/vms/why-vm-1/reset`, { method: 'POST', headers: { authorization: ADMIN } });
    await reportReset('why-vm-1', { outcome: 'failed', message: 'userdel: user lablink is currently used by process 812' });

    const assigned = await requestVm(env.db.sql, { email: 'gpu@example.com', crdCommand: crdCommand() });
    if (assigned.kind !== 'assigned') throw new Error('expected an assignment');
    await env.db.pool.query(`UPDATE vms SET failed_at = now(), failure = 'GPU check failed: GPU is lost' WHERE hostname = $1`, [
      assigned.hostname,
    ]);
    expect(
      (await fetch(`${env.url}/api/vms/${assigned.hostname}/move`, { method: 'POST', headers: { authorization: ADMIN } })).status,
    ).toBe(200);
    expect(await (await reportReset(assigned.hostname, { outcome: 'done' })).json()).toEqual({ state: 'waiting', failed: true });

    const resets = log.events.filter((entry) => entry.event.startsWith('vm.reset_'));
    expect(resets).toEqual([
      { event: 'vm.reset_requested', fields: { hostname: 'why-vm-1', email: null } },
      {
        event: 'vm.reset_failed',
        fields: { hostname: 'why-vm-1', reason: 'Reset failed: userdel: user lablink is currently used by process 812' },
      },
      { event: 'vm.reset_done_still_failed', fields: { hostname: assigned.hostname, reason: 'GPU check failed: GPU is lost' } },
    ]);
    const dashboard = await (await fetch(`${env.url}/admin`, { headers: { authorization: ADMIN } })).text();
    expect(dashboard).toContain(`<tr data-hostname="${assigned.hostname}" data-status="failed" class="problem">`);
  });
});
