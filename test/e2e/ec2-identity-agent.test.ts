import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildAgentBundle } from '../../agent/bundle';
import { SimulatedVm } from '../../local/simulated-fleet';
import { ec2Verifier, startFakeImds } from '../../local/fake-ec2-identity';
import { crdCommand, waitFor } from '../support/fixtures';
import { TestStack, pollAsVm, startTestStack, submitForm } from '../support/stack';

describe('an agent proving its identity with the EC2 instance identity document (EC2 API mocked with aws-sdk-client-mock)', () => {
  let env: TestStack;
  let imds: Awaited<ReturnType<typeof startFakeImds>>;
  let vm: SimulatedVm;
  let bundleDir: string;

  beforeAll(async () => {
    const { verifier } = ec2Verifier([
      { instanceId: 'i-0aaaaaaaaaaaaaaa1', name: 'ec2-vm-1' },
      { instanceId: 'i-0aaaaaaaaaaaaaaa2', name: 'ec2-vm-2' },
    ]);
    env = await startTestStack({ holdSeconds: 2, identity: verifier });
    imds = await startFakeImds('i-0aaaaaaaaaaaaaaa1');
    bundleDir = await mkdtemp(path.join(os.tmpdir(), 'lablink-agent-ec2-'));
    const agentBundle = path.join(bundleDir, 'agent.js');
    await writeFile(agentBundle, buildAgentBundle());
    vm = await SimulatedVm.create({
      name: 'ec2-vm-1',
      allocatorUrl: env.url,
      fleetToken: '',
      agentBundle,
      env: { LABLINK_IDENTITY: 'ec2', LABLINK_IMDS_URL: imds.url, LABLINK_FLEET_TOKEN: '' },
    });
    vm.start();
  });
  afterAll(async () => {
    await vm?.dispose();
    await imds?.close();
    await env?.close();
    await rm(bundleDir, { recursive: true, force: true });
  });

  it('registers, receives its assignment and reports configured, with no fleet token at all', async () => {
    await waitFor(
      async () => (await env.db.pool.query(`SELECT 1 FROM vms WHERE hostname = 'ec2-vm-1'`)).rowCount === 1,
      'the VM to register',
    );
    const response = await submitForm(env.url, { email: 'ec2@example.com', crd_command: crdCommand() });
    expect(((await response.json()) as { hostname: string }).hostname).toBe('ec2-vm-1');
    await waitFor(
      async () => (await env.db.pool.query(`SELECT state FROM vms WHERE hostname = 'ec2-vm-1'`)).rows[0].state === 'configured',
      'configured',
    );
    expect(imds.tokenRequests()).toBe(1);
  });

  it('refuses anyone polling as a fleet VM without the signed document, even with a bearer token', async () => {
    const response = await pollAsVm(env.url, 'ec2-vm-2');
    expect(response.status).toBe(401);
    // The real agent of ec2-vm-1 keeps reporting meanwhile; ec2-vm-2 must not have been registered.
    expect((await env.db.pool.query(`SELECT 1 FROM vms WHERE hostname = 'ec2-vm-2'`)).rowCount).toBe(0);
  });
});
