import { TEST_ADMIN_SECRET } from '../support/fixtures';
import { TestStack, startTestStack } from '../support/stack';

const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;
const FAILED_LINE = { status: 'FAIL', name: 'vms', message: 'no VM has registered', action: 'Deploy the fleet.' };

describe('the go / no-go result on the admin side (/api/go-no-go and the dashboard)', () => {
  let env: TestStack;
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${env.url}/api/go-no-go`, {
      method: 'POST',
      headers: { authorization: ADMIN, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const stored = async () => (await env.db.pool.query('SELECT go, problems FROM go_no_go_checks ORDER BY id')).rows;
  const dashboard = async () => (await fetch(`${env.url}/admin`, { headers: { authorization: ADMIN } })).text();

  beforeAll(async () => {
    env = await startTestStack({ expiresAt: '2099-01-01T18:00:00.000Z' });
  });
  afterAll(async () => env?.close());
  beforeEach(async () => {
    await env.db.pool.query('DELETE FROM go_no_go_checks');
  });

  it('tells the check the expiry, and says on the dashboard that no check has run yet', async () => {
    const answer = await fetch(`${env.url}/api/go-no-go`, { headers: { authorization: ADMIN } });
    expect(await answer.json()).toEqual({ expiresAt: '2099-01-01T18:00:00.000Z', lastCheck: null });
    expect(await dashboard()).toContain('No go / no-go check has run yet');
  });

  it('stores a result with the verdict its lines give, and the dashboard shows what failed', async () => {
    const answer = await post({ lines: [{ status: 'PASS', name: 'form', message: 'the form answers' }, FAILED_LINE] });
    expect(answer.status).toBe(201);
    expect(await answer.json()).toMatchObject({ go: false, problems: 1 });
    expect(await stored()).toEqual([{ go: false, problems: 1 }]);
    const page = await dashboard();
    expect(page).toContain('Last check: <strong>NO-GO (1 problem)</strong>');
    expect(page).toContain('<li>vms: no VM has registered — Deploy the fleet.</li>');
  });

  it.each([
    ['a line with an unknown status', { lines: [{ ...FAILED_LINE, status: 'OK' }] }, "Each line's status must be PASS, WARN or FAIL."],
    ['no lines', { lines: [] }, 'A check has at least one line.'],
    ['a verdict of its own', { go: true, lines: [FAILED_LINE] }, 'Unexpected field(s): go.'],
    ['a message too long', { lines: [{ ...FAILED_LINE, message: 'x'.repeat(1001) }] }, "A line's message must be at most 1000 characters."],
  ])('refuses %s with a 400 and stores nothing', async (_what, body, error) => {
    const answer = await post(body);
    expect(answer.status).toBe(400);
    expect(await answer.json()).toEqual({ error });
    expect(await stored()).toEqual([]);
  });

  it('needs the admin secret, and refuses a cross-site post', async () => {
    const anonymous = await fetch(`${env.url}/api/go-no-go`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lines: [FAILED_LINE] }),
    });
    expect(anonymous.status).toBe(401);
    expect((await fetch(`${env.url}/api/go-no-go`)).status).toBe(401);
    expect((await post({ lines: [FAILED_LINE] }, { origin: 'https://evil.example' })).status).toBe(403);
    expect(await stored()).toEqual([]);
  });
});
