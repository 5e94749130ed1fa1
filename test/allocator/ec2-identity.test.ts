import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { generateKeyPairSync } from 'node:crypto';
import { awsIdentityCertificate } from '../../allocator/ec2-identity';
import { FleetTokenVerifier } from '../../allocator/identity';
import { TEST_FLEET_TOKEN } from '../support/fixtures';
import { FleetInstance, ec2Verifier, identityDocument, signDocument } from '../../local/fake-ec2-identity';

const FLEET = [
  { instanceId: 'i-0aaaaaaaaaaaaaaa1', name: 'lablink-vm-1' },
  { instanceId: 'i-0aaaaaaaaaaaaaaa2', name: 'lablink-vm-2' },
  { instanceId: 'i-0bbbbbbbbbbbbbbb1', name: 'other-vm-1', fleet: 'SomeoneElse' },
  { instanceId: 'i-0ccccccccccccccc1', name: 'lablink-vm-9', state: 'terminated' },
];

function signed(instanceId: string, overrides: Record<string, unknown> = {}) {
  const document = identityDocument(instanceId, overrides);
  return { document, signature: signDocument(document) };
}

describe('EC2 instance identity (EC2 API mocked with aws-sdk-client-mock)', () => {
  it('identifies a fleet VM by its signed document and its Name tag', async () => {
    const { verifier } = ec2Verifier(FLEET);
    await expect(
      verifier.identify({ authorization: undefined, hostname: 'lablink-vm-1', identity: signed('i-0aaaaaaaaaaaaaaa1') }),
    ).resolves.toEqual({
      ok: true,
      hostname: 'lablink-vm-1',
      instanceId: 'i-0aaaaaaaaaaaaaaa1',
    });
  });

  const refused: [string, () => unknown, string, number, RegExp][] = [
    ['no identity and no token fallback', () => undefined, 'lablink-vm-1', 401, /Send "identity"/],
    ['an identity that is not an object', () => 'i-0aaaaaaaaaaaaaaa1', 'lablink-vm-1', 401, /must hold/],
    [
      'a signature from another key',
      () => ({
        document: identityDocument('i-0aaaaaaaaaaaaaaa1'),
        signature: signDocument(identityDocument('i-0aaaaaaaaaaaaaaa1'), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
      }),
      'lablink-vm-1',
      403,
      /does not verify/,
    ],
    [
      'a document edited after signing',
      () => ({ ...signed('i-0aaaaaaaaaaaaaaa1'), document: identityDocument('i-0aaaaaaaaaaaaaaa2') }),
      'lablink-vm-2',
      403,
      /does not verify/,
    ],
    [
      'a replayed document of VM 1 claiming to be VM 2',
      () => signed('i-0aaaaaaaaaaaaaaa1'),
      'lablink-vm-2',
      403,
      /This instance is lablink-vm-1, not lablink-vm-2/,
    ],
    ['an instance of another fleet', () => signed('i-0bbbbbbbbbbbbbbb1'), 'other-vm-1', 403, /not part of the fleet/],
    ['a terminated instance', () => signed('i-0ccccccccccccccc1'), 'lablink-vm-9', 403, /not part of the fleet/],
    ['an instance EC2 does not know', () => signed('i-0ddddddddddddddd1'), 'lablink-vm-1', 403, /not part of the fleet/],
    ['a document from another region', () => signed('i-0aaaaaaaaaaaaaaa1', { region: 'us-east-1' }), 'lablink-vm-1', 403, /another region/],
    [
      'a document from another account',
      () => signed('i-0aaaaaaaaaaaaaaa1', { accountId: '999999999999' }),
      'lablink-vm-1',
      403,
      /another account/,
    ],
    [
      'a document saved before the instance was stopped and started again',
      () => signed('i-0aaaaaaaaaaaaaaa1', { pendingTime: '2026-12-03T08:00:00Z' }),
      'lablink-vm-1',
      403,
      /earlier start/,
    ],
    [
      'a document without a pendingTime',
      () => signed('i-0aaaaaaaaaaaaaaa1', { pendingTime: undefined }),
      'lablink-vm-1',
      403,
      /earlier start/,
    ],
    ['an over-long document', () => ({ document: 'x'.repeat(5000), signature: 'AAAA' }), 'lablink-vm-1', 401, /must hold/],
  ];

  it.each(refused)('refuses %s', async (_case, identity, hostname, status, message) => {
    const { verifier } = ec2Verifier(FLEET);
    const result = await verifier.identify({ authorization: undefined, hostname, identity: identity() });
    expect(result).toMatchObject({ ok: false, status });
    if (!result.ok) expect(result.message).toMatch(message);
  });

  it('still admits LabLink-compatible clients with the fleet token when that is enabled', async () => {
    const { verifier } = ec2Verifier(FLEET, new FleetTokenVerifier(TEST_FLEET_TOKEN));
    await expect(verifier.identify({ authorization: `Bearer ${TEST_FLEET_TOKEN}`, hostname: 'legacy-vm' })).resolves.toEqual({
      ok: true,
      hostname: 'legacy-vm',
    });
    await expect(verifier.identify({ authorization: 'Bearer wrong-token-wrong-token', hostname: 'legacy-vm' })).resolves.toMatchObject({
      ok: false,
      status: 403,
    });
  });

  it('asks EC2 once per instance, then answers from its cache', async () => {
    const { verifier, mock } = ec2Verifier(FLEET);
    for (let poll = 0; poll < 5; poll += 1) {
      await verifier.identify({ authorization: undefined, hostname: 'lablink-vm-1', identity: signed('i-0aaaaaaaaaaaaaaa1') });
    }
    expect(mock.commandCalls(DescribeInstancesCommand)).toHaveLength(1);
  });

  it('asks EC2 again when a cached answer predates the instance’s latest start, and admits the fresh document', async () => {
    const fleet: FleetInstance[] = FLEET.map((instance) => ({ ...instance }));
    const { verifier, mock } = ec2Verifier(fleet);
    const vm1 = { authorization: undefined, hostname: 'lablink-vm-1' };
    await expect(verifier.identify({ ...vm1, identity: signed('i-0aaaaaaaaaaaaaaa1') })).resolves.toMatchObject({ ok: true });
    // Stopped and started: a new LaunchTime, and the metadata service signs a new document.
    fleet[0].launchTime = '2026-12-04T13:00:00Z';
    await expect(
      verifier.identify({ ...vm1, identity: signed('i-0aaaaaaaaaaaaaaa1', { pendingTime: '2026-12-04T13:00:00Z' }) }),
    ).resolves.toMatchObject({ ok: true });
    await expect(verifier.identify({ ...vm1, identity: signed('i-0aaaaaaaaaaaaaaa1') })).resolves.toMatchObject({ ok: false, status: 403 });
    expect(mock.commandCalls(DescribeInstancesCommand)).toHaveLength(3);
  });

  it('ships AWS’s public certificates for the regions LabLink deploys to', () => {
    for (const region of ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-southeast-2']) {
      expect(awsIdentityCertificate(region).subject).toContain('O=Amazon Web Services LLC');
    }
    expect(() => awsIdentityCertificate('mars-north-1')).toThrow(/No AWS instance identity certificate/);
  });
});
