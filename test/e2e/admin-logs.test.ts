import { VmLogLine } from '../../contract/wire';
import { TEST_ADMIN_SECRET } from '../support/fixtures';
import { TestStack, sendLogsAsVm, startTestStack } from '../support/stack';

const ADMIN = { authorization: `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}` };
const ATTACK = `<script>alert("pwned")</script> E: Sub-process /usr/bin/dpkg returned an error code (1)`;

describe('each VM’s log on the admin dashboard, in text and as JSON', () => {
  let env: TestStack;
  const line = (level: VmLogLine['level'], text: string, source: VmLogLine['source'] = 'boot'): VmLogLine => ({
    at: new Date().toISOString(),
    level,
    source,
    text,
  });

  beforeAll(async () => {
    env = await startTestStack();
    const response = await sendLogsAsVm(env.url, {
      hostname: 'logs-vm-1',
      step: 'install-crd',
      lines: [
        line('info', 'Reading package lists...'),
        line('error', ATTACK),
        line('warn', 'W: Some index files failed to download'),
        line('info', 'agent.started vm=logs-vm-1', 'agent'),
      ],
    });
    expect(response.status).toBe(200);
  });
  afterAll(async () => env?.close());

  const get = (path: string, headers: Record<string, string> = ADMIN) => fetch(`${env.url}${path}`, { headers });

  it('lists each VM with its step and a link to its log that counts its errors', async () => {
    const page = await (await get('/admin')).text();
    const row = page.slice(page.indexOf('<tr data-hostname="logs-vm-1"'));
    expect(row).toMatch(
      /<td><span class="progress progress-installing-desktop">installing desktop<\/span> <small>install-crd · [^<]+<\/small><\/td>\s*<td data-filter-skip><a href="\/admin\/vms\/logs-vm-1\/logs" class="state state-error">1 log error<\/a><\/td>/,
    );
  });

  it('shows the errors first, then every line as it came, with the agent’s text escaped', async () => {
    const response = await get('/admin/vms/logs-vm-1/logs');
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).not.toContain('<script>alert');
    const escaped = '&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;';
    expect(page).toContain(escaped);
    expect(page).toContain('Step: <strong>install-crd</strong>');
    const errorsAt = page.indexOf('<h2>Errors (1)</h2>');
    const allAt = page.indexOf('<h2>All lines, oldest first (4)</h2>');
    expect(errorsAt).toBeGreaterThan(0);
    expect(page.indexOf(escaped)).toBeGreaterThan(errorsAt);
    expect(page.indexOf(escaped)).toBeLessThan(allAt);
    expect(page.indexOf('Reading package lists...')).toBeGreaterThan(allAt);
    expect(page).toMatch(
      /<tr class="level-warn">.*<td class="level">warn<\/td><td>boot<\/td><td class="log-text">W: Some index files failed to download<\/td><\/tr>/,
    );
  });

  it('filters to errors only without JavaScript', async () => {
    const page = await (await get('/admin/vms/logs-vm-1/logs?level=error')).text();
    expect(page).toContain('<h2>Only error lines (1)</h2>');
    expect(page).toContain('&lt;script&gt;');
    expect(page).not.toContain('Reading package lists...');
    expect(page).toContain('<a href="/admin/vms/logs-vm-1/logs?level=error" aria-current="page">Errors only</a>');
  });

  it('downloads the log as plain text, one line each, oldest first', async () => {
    const response = await get('/admin/vms/logs-vm-1/logs.txt');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; charset=UTF-8');
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="logs-vm-1-log.txt"');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const lines = (await response.text()).trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO {2}boot {2}Reading package lists\.\.\.$/);
    expect(lines[1]).toMatch(/Z ERROR boot {2}<script>alert\("pwned"\)<\/script> E: Sub-process/);
    expect(lines[3]).toMatch(/Z INFO {2}agent agent\.started vm=logs-vm-1$/);
  });

  it('gives the log as JSON with the admin secret, filtered by level on request', async () => {
    const all = (await (await get('/api/vms/logs-vm-1/logs')).json()) as {
      hostname: string;
      step: string;
      stepAt: string;
      lines: VmLogLine[];
    };
    expect(all).toMatchObject({ hostname: 'logs-vm-1', step: 'install-crd' });
    expect(Date.parse(all.stepAt)).not.toBeNaN();
    expect(all.lines.map((stored) => stored.level)).toEqual(['info', 'error', 'warn', 'info']);
    const errors = (await (await get('/api/vms/logs-vm-1/logs?level=error')).json()) as { lines: VmLogLine[] };
    expect(errors.lines).toEqual([expect.objectContaining({ level: 'error', source: 'boot', text: ATTACK })]);
  });
});
