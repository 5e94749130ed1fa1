import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildAgentBundle } from '../../agent/bundle';
import { recordPoll } from '../../store/vms';
import { requestReplacements, spareRegistry } from '../../store/replacement';
import { Sql } from '../../store/sql';
import { CLAIM_NAME_PATH } from '../../contract/wire';
import { SimulatedVm } from '../../local/simulated-fleet';
import { ec2Verifier, identityDocument, signDocument, startFakeImds } from '../../local/fake-ec2-identity';
import { crdCommand, waitFor } from '../support/fixtures';
import { TestStack, startTestStack, submitForm } from '../support/stack';

const run = promisify(execFile);
const NAMED = 'i-0aaaaaaaaaaaaaaa1';
const FAILED = 'i-0aaaaaaaaaaaaaaa2';
const SPARE = 'i-0eeeeeeeeeeeeeee1';
const SECOND_SPARE = 'i-0eeeeeeeeeeeeeee2';
/** Named lablink-2 and not tagged replaced: the fleet grew back over a name a spare holds. */
const GROWN_BACK = 'i-0aaaaaaaaaaaaaaa3';

function signed(instanceId: string) {
  const document = identityDocument(instanceId);
  return { document, signature: signDocument(document) };
}

describe('a spare claims the name of a failed VM and serves under it (EC2 API mocked with aws-sdk-client-mock)', () => {
  let env: TestStack;
  let sql: Sql;
  let bundleDir: string;
  let agentBundle: string;
  const closers: (() => Promise<unknown>)[] = [];

  const post = (route: string, body: object) =>
    fetch(`${env.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  /** The boot script's call: the real agent bundle, run as `agent.js claim-name` with the spare's metadata service. */
  const claimName = async (instanceId: string) => {
    const imds = await startFakeImds(instanceId);
    closers.push(() => imds.close());
    return run(process.execPath, [agentBundle, 'claim-name'], {
      env: { PATH: process.env.PATH, LABLINK_ALLOCATOR_URL: env.url, LABLINK_IDENTITY: 'ec2', LABLINK_IMDS_URL: imds.url },
    }).then(
      ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );
  };

  beforeAll(async () => {
    const { verifier } = ec2Verifier(
      [
        { instanceId: NAMED, name: 'lablink-1' },
        // The failed VM, once tagged replaced, is no member of the fleet any more.
        { instanceId: FAILED, name: 'lablink-2', replaced: true },
        { instanceId: SPARE, spare: true },
        { instanceId: SECOND_SPARE, spare: true },
        { instanceId: GROWN_BACK, name: 'lablink-2' },
      ],
      undefined,
      { nameOf: (instanceId) => spareRegistry(sql).nameOf(instanceId), holderOf: (hostname) => spareRegistry(sql).holderOf(hostname) },
    );
    env = await startTestStack({ holdSeconds: 2, identity: verifier });
    sql = env.db.sql;
    bundleDir = await mkdtemp(path.join(os.tmpdir(), 'lablink-spare-'));
    agentBundle = path.join(bundleDir, 'agent.js');
    await writeFile(agentBundle, buildAgentBundle());
    // lablink-2 failed and nobody is on it: the fleet doctor asked for a spare.
    await recordPoll(sql, 'lablink-2', 0, FAILED);
    await env.db.pool.query(`UPDATE vms SET failed_at = now(), failure = 'The agent stopped reporting' WHERE hostname = 'lablink-2'`);
    expect(await requestReplacements(sql, 2)).toHaveLength(1);
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await env?.close();
    await rm(bundleDir, { recursive: true, force: true });
  });

  it('refuses a spare that polls before it has a name, then names it, and the spare serves a participant as lablink-2', async () => {
    const early = await post('/vm_startup', { hostname: 'lablink-2', identity: signed(SPARE) });
    expect(early.status).toBe(403);
    expect(((await early.json()) as { error: string }).error).toMatch(/no name yet/);

    const claimed = await claimName(SPARE);
    expect(claimed).toEqual({ code: 0, stdout: 'lablink-2\n', stderr: '' });

    const imds = await startFakeImds(SPARE);
    const vm = await SimulatedVm.create({
      name: claimed.stdout.trim(),
      allocatorUrl: env.url,
      fleetToken: '',
      agentBundle,
      env: { LABLINK_IDENTITY: 'ec2', LABLINK_IMDS_URL: imds.url, LABLINK_FLEET_TOKEN: '' },
    });
    closers.push(
      () => imds.close(),
      () => vm.dispose(),
    );
    vm.start();
    await waitFor(
      async () => (await env.db.pool.query(`SELECT 1 FROM vms WHERE hostname = 'lablink-2' AND alive_until > now()`)).rowCount === 1,
      'the spare to poll',
    );
    const response = await submitForm(env.url, { email: 'spare@example.com', crd_command: crdCommand() });
    expect(((await response.json()) as { hostname: string }).hostname).toBe('lablink-2');
    await waitFor(
      async () => (await env.db.pool.query(`SELECT state FROM vms WHERE hostname = 'lablink-2'`)).rows[0].state === 'configured',
      'configured',
    );
  });

  it('gives a second spare no name while no VM waits for one; its boot script hears why', async () => {
    const claimed = await claimName(SECOND_SPARE);
    expect(claimed.code).toBe(1);
    expect(claimed.stdout).toBe('');
    expect(claimed.stderr).toMatch(/409.*No VM is waiting for a spare/);
  });

  it('refuses names to the failed instance, to named VMs, and to bodies that are not an identity', async () => {
    const cases: [object, number, RegExp][] = [
      [{ identity: signed(FAILED) }, 403, /not part of the fleet/],
      [{ identity: signed(NAMED) }, 403, /named VM of the fleet, not a spare/],
      [{}, 401, /Send "identity"/],
      [{ identity: signed(SECOND_SPARE), hostname: 'lablink-9' }, 400, /hostname/],
    ];
    for (const [body, status, message] of cases) {
      const response = await post(CLAIM_NAME_PATH, body);
      expect({ status: response.status, error: ((await response.json()) as { error: string }).error }).toEqual({
        status,
        error: expect.stringMatching(message),
      });
    }
    // The replaced instance, started again by someone, cannot poll as its old name either,
    // nor can another instance tagged with the name while the spare holds it.
    expect((await post('/vm_startup', { hostname: 'lablink-2', identity: signed(FAILED) })).status).toBe(403);
    const grownBack = await post('/vm_startup', { hostname: 'lablink-2', identity: signed(GROWN_BACK) });
    expect({ status: grownBack.status, ...((await grownBack.json()) as object) }).toEqual({
      status: 403,
      error: `lablink-2 is served by the spare ${SPARE} now: this instance was replaced.`,
    });
    const names = (await env.db.pool.query(`SELECT hostname, instance_id FROM vms ORDER BY hostname`)).rows;
    expect(names).toEqual([{ hostname: 'lablink-2', instance_id: SPARE }]);
  });
});
