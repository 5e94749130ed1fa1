import { recordPoll } from '../../core/vms';
import { TEST_FLEET_TOKEN } from '../support/fixtures';
import { TestStack, startTestStack } from '../support/stack';

describe('agent endpoints refuse bad input with a clear 4xx and change nothing', () => {
  let env: TestStack;
  beforeAll(async () => {
    env = await startTestStack({ holdSeconds: 1 });
    await recordPoll(env.db.sql, 'known-vm', 60);
  });
  afterAll(async () => env?.close());

  const auth = `Bearer ${TEST_FLEET_TOKEN}`;
  const json = 'application/json';
  const cases: [string, string, Record<string, string>, string, number, RegExp][] = [
    ['no token', '/vm_startup', { 'content-type': json }, '{"hostname":"new-vm"}', 401, /Bearer/],
    ['a wrong token', '/vm_startup', { 'content-type': json, authorization: 'Bearer wrong-token-wrong-token' }, '{"hostname":"new-vm"}', 403, /wrong/],
    ['malformed JSON', '/vm_startup', { 'content-type': json, authorization: auth }, '{"hostname":', 400, /not valid JSON/],
    ['a JSON array', '/vm_startup', { 'content-type': json, authorization: auth }, '["new-vm"]', 400, /JSON object/],
    ['a wrong content type', '/vm_startup', { 'content-type': 'text/plain', authorization: auth }, '{"hostname":"new-vm"}', 415, /application\/json/],
    ['a missing hostname', '/vm_startup', { 'content-type': json, authorization: auth }, '{}', 400, /hostname/],
    ['a hostname with shell syntax', '/vm_startup', { 'content-type': json, authorization: auth }, '{"hostname":"vm;reboot"}', 400, /hostname/],
    ['an over-long hostname', '/vm_startup', { 'content-type': json, authorization: auth }, JSON.stringify({ hostname: 'a'.repeat(64) }), 400, /hostname/],
    ['an oversized body', '/vm_startup', { 'content-type': json, authorization: auth }, JSON.stringify({ hostname: 'x', pad: 'y'.repeat(5000) }), 413, /larger than/],
    ['a report without a token', '/vm_status', { 'content-type': json }, JSON.stringify({ hostname: 'known-vm', assignment: '00000000-0000-4000-8000-000000000000', outcome: 'configured' }), 401, /Bearer/],
    ['a report with a bad assignment id', '/vm_status', { 'content-type': json, authorization: auth }, JSON.stringify({ hostname: 'known-vm', assignment: "1' OR '1'='1", outcome: 'configured' }), 400, /assignment/],
    ['a report with an unknown outcome', '/vm_status', { 'content-type': json, authorization: auth }, JSON.stringify({ hostname: 'known-vm', assignment: '00000000-0000-4000-8000-000000000000', outcome: 'hacked' }), 400, /outcome/],
    ['a report with extra fields', '/vm_status', { 'content-type': json, authorization: auth }, JSON.stringify({ hostname: 'known-vm', assignment: '00000000-0000-4000-8000-000000000000', outcome: 'configured', state: 'waiting' }), 400, /Unexpected field\(s\): state/],
  ];

  it.each(cases)('%s', async (_case, path, headers, body, status, message) => {
    const before = await env.db.dumpVms();
    const response = await fetch(`${env.url}${path}`, { method: 'POST', headers, body });
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: string }).error).toMatch(message);
    expect(await env.db.dumpVms()).toEqual(before);
  });
});
