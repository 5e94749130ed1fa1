import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { Ec2FleetMembership, Ec2IdentityVerifier } from '../allocator/ec2-identity';
import { SpareRegistry } from '../store/replacement';
import { VmIdentityVerifier } from '../allocator/identity';
import { FLEET_TAG, REPLACED_TAG, SPARE_TAG } from '../contract/wire';

export const TEST_REGION = 'eu-west-1';
export const TEST_ACCOUNT = '123456789012';
export const TEST_FLEET = 'LabLinkTest';

/** Stands in for AWS's regional signing key: tests sign documents the way AWS does (RSA-SHA256, base64). */
export const testSigningKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });

/** The instance role's temporary credentials as the stand-in metadata service hands them out. */
export const TEST_ROLE_NAME = 'LabLinkTestVmRole';
export const TEST_ROLE_CREDENTIALS = {
  accessKeyId: 'ASIATESTTESTTESTTEST',
  secretAccessKey: 'test/Secret+Key0123456789abcdefghijklmnop',
  sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE/session+token==',
};

/** When the test instances were last started: a document's pendingTime and DescribeInstances' LaunchTime, unless a test or a fake IMDS says otherwise. */
export const TEST_LAUNCH_TIME = '2026-12-04T08:00:00Z';
/** Each fake IMDS's current pendingTime, which the mocked DescribeInstances reports as LaunchTime, as EC2 does. */
const imdsLaunchTimes = new Map<string, string>();

export function identityDocument(instanceId: string, overrides: Record<string, unknown> = {}): string {
  return JSON.stringify(
    {
      accountId: TEST_ACCOUNT,
      architecture: 'x86_64',
      availabilityZone: `${TEST_REGION}a`,
      instanceId,
      instanceType: 't3.large',
      pendingTime: TEST_LAUNCH_TIME,
      region: TEST_REGION,
      version: '2017-09-30',
      ...overrides,
    },
    null,
    2,
  );
}

export function signDocument(document: string, key = testSigningKeys.privateKey): string {
  return sign('sha256', Buffer.from(document), key).toString('base64');
}

export interface FleetInstance {
  instanceId: string;
  /** The Name tag; a spare has none until the allocator names it. */
  name?: string;
  fleet?: string;
  state?: string;
  /** An instance of the spares group (tag lablink:spare=true). */
  spare?: boolean;
  /** A failed VM a spare took over from (tag lablink:replaced). */
  replaced?: boolean;
  /** When it was last started; TEST_LAUNCH_TIME unless set. */
  launchTime?: string;
}

/** The EC2 API cannot run here: DescribeInstances is mocked with aws-sdk-client-mock over this list. */
export function mockFleet(instances: FleetInstance[]): { client: EC2Client; mock: AwsClientStub<EC2Client> } {
  const client = new EC2Client({ region: TEST_REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const mock = mockClient(client);
  mock.on(DescribeInstancesCommand).callsFake(async (input: { InstanceIds?: string[] }) => {
    const found = instances.filter((instance) => input.InstanceIds?.includes(instance.instanceId));
    if (found.length === 0) throw Object.assign(new Error('The instance ID does not exist'), { name: 'InvalidInstanceID.NotFound' });
    return {
      Reservations: [
        {
          Instances: found.map((instance) => ({
            InstanceId: instance.instanceId,
            State: { Name: instance.state ?? 'running' },
            LaunchTime: new Date(instance.launchTime ?? imdsLaunchTimes.get(instance.instanceId) ?? TEST_LAUNCH_TIME),
            Tags: [
              ...(instance.name ? [{ Key: 'Name', Value: instance.name }] : []),
              { Key: FLEET_TAG, Value: instance.fleet ?? TEST_FLEET },
              ...(instance.spare ? [{ Key: SPARE_TAG, Value: 'true' }] : []),
              ...(instance.replaced ? [{ Key: REPLACED_TAG, Value: '2026-12-02T10:00:00.000Z' }] : []),
            ],
          })),
        },
      ],
    };
  });
  return { client, mock };
}

export function ec2Verifier(instances: FleetInstance[], fallback?: VmIdentityVerifier, spares?: SpareRegistry) {
  const { client, mock } = mockFleet(instances);
  const verifier = new Ec2IdentityVerifier({
    region: TEST_REGION,
    accountId: TEST_ACCOUNT,
    publicKey: testSigningKeys.publicKey,
    fleet: new Ec2FleetMembership(client, TEST_FLEET, spares),
    fallback,
  });
  return { verifier, mock };
}

/**
 * A stand-in for the instance metadata service (on 127.0.0.1 unless told): IMDSv2 token, then
 * document, signature, instance id and role credentials. `started()` is EC2's StartInstances
 * after a stop: the document (signed again) gets a new pendingTime.
 */
export async function startFakeImds(
  instanceId: string,
  listenOn: { host: string; port: number } = { host: '127.0.0.1', port: 0 },
): Promise<{ url: string; document: string; tokenRequests: () => number; started(): string; close(): Promise<void> }> {
  const signed = (pendingTime: Date) => {
    const launchTime = pendingTime.toISOString().replace(/\.\d+Z$/, 'Z');
    imdsLaunchTimes.set(instanceId, launchTime);
    const text = identityDocument(instanceId, { pendingTime: launchTime });
    return { text, signature: signDocument(text).replace(/(.{64})/g, '$1\n') };
  };
  let current = signed(new Date());
  const document = current.text;
  const token = `imds-token-${instanceId}`;
  let tokenRequests = 0;
  const server: Server = createServer((request, response) => {
    if (request.method === 'PUT' && request.url === '/latest/api/token' && request.headers['x-aws-ec2-metadata-token-ttl-seconds']) {
      tokenRequests += 1;
      return response.end(token);
    }
    if (request.headers['x-aws-ec2-metadata-token'] !== token) {
      response.statusCode = 401;
      return response.end();
    }
    if (request.url === '/latest/dynamic/instance-identity/document') return response.end(current.text);
    if (request.url === '/latest/dynamic/instance-identity/signature') return response.end(current.signature);
    if (request.url === '/latest/meta-data/instance-id') return response.end(instanceId);
    if (request.url === '/latest/meta-data/iam/security-credentials/') return response.end(TEST_ROLE_NAME);
    if (request.url === `/latest/meta-data/iam/security-credentials/${TEST_ROLE_NAME}`) {
      const { accessKeyId, secretAccessKey, sessionToken } = TEST_ROLE_CREDENTIALS;
      const expiration = new Date(Date.now() + 6 * 3600_000).toISOString();
      return response.end(
        JSON.stringify(
          {
            Code: 'Success',
            Type: 'AWS-HMAC',
            AccessKeyId: accessKeyId,
            SecretAccessKey: secretAccessKey,
            Token: sessionToken,
            Expiration: expiration,
          },
          null,
          2,
        ),
      );
    }
    response.statusCode = 404;
    response.end();
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(listenOn.port, listenOn.host, () => resolve()));
  return {
    url: `http://${listenOn.host}:${(server.address() as AddressInfo).port}`,
    document,
    tokenRequests: () => tokenRequests,
    started: () => {
      current = signed(new Date());
      return current.text;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
