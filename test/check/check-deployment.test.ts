import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CloudFormationClient, DescribeStacksCommand, Stack } from '@aws-sdk/client-cloudformation';
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand, DescribeInstanceTypesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetServiceQuotaCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { mockClient } from 'aws-sdk-client-mock';
import { CheckTarget, checkDeployment } from '../../check/check-deployment';
import { useDeployments, untilFree } from '../support/deployment';
import { TEST_ADMIN_SECRET } from '../support/fixtures';

const region = 'eu-west-1';
const clients = {
  cloudFormation: new CloudFormationClient({ region }),
  secrets: new SecretsManagerClient({ region }),
  ec2: new EC2Client({ region }),
  quotas: new ServiceQuotasClient({ region }),
  autoScaling: new AutoScalingClient({ region }),
};
const cloudFormation = mockClient(clients.cloudFormation);
const secrets = mockClient(clients.secrets);
const ec2 = mockClient(clients.ec2);
const quotas = mockClient(clients.quotas);
const autoScaling = mockClient(clients.autoScaling);
const deployments = useDeployments();

const SECRET_NAME = 'LabLinkAdminSecret-abc';
const target = (vmCount: number): CheckTarget => ({
  kind: 'stack',
  clients,
  region,
  stackName: 'Course',
  plan: { instanceType: 'g4dn.xlarge', vmCount, volumeGb: 40 },
});
const probeOptions = { probeTimeoutMs: 60_000, pollMs: 200 };

/**
 * The account as AWS would describe it: the stack with its outputs, the secret, a G quota of
 * `gpuQuota` vCPUs, the fleet's two instances (not counted against the quota: they are the fleet's own) and its spares group.
 */
function account(options: { stack?: Partial<Stack>; formUrl: string; gpuQuota?: number }): void {
  cloudFormation.on(DescribeStacksCommand, { StackName: 'Course' }).resolves({
    Stacks: [
      {
        StackName: 'Course',
        StackStatus: 'CREATE_COMPLETE',
        CreationTime: new Date(),
        Outputs: [
          { OutputKey: 'FormUrl', OutputValue: `${options.formUrl}/` },
          { OutputKey: 'AdminSecretName', OutputValue: SECRET_NAME },
        ],
        ...options.stack,
      },
    ],
  });
  secrets.on(GetSecretValueCommand, { SecretId: SECRET_NAME }).resolves({ SecretString: TEST_ADMIN_SECRET });
  ec2.on(DescribeInstanceTypesCommand).resolves({ InstanceTypes: [{ InstanceType: 'g4dn.xlarge', VCpuInfo: { DefaultVCpus: 4 } }] });
  const fleet = ['i-1', 'i-2'].map((InstanceId, index) => ({
    InstanceId,
    InstanceType: 'g4dn.xlarge' as const,
    Tags: [
      { Key: 'lablink:fleet', Value: 'Course' },
      { Key: 'Name', Value: `lablink-vm-${index + 1}` },
    ],
  }));
  ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: fleet }] });
  ec2.on(DescribeInstanceAttributeCommand).resolves({ DisableApiTermination: { Value: false } });
  autoScaling.on(DescribeAutoScalingGroupsCommand).resolves({
    AutoScalingGroups: [
      {
        AutoScalingGroupName: 'Course-Spares',
        MinSize: 0,
        MaxSize: 2,
        DesiredCapacity: 0,
        DefaultCooldown: 300,
        AvailabilityZones: [],
        HealthCheckType: 'EC2',
        CreatedTime: new Date(),
        Instances: [],
      },
    ],
  });
  quotas.on(GetServiceQuotaCommand, { ServiceCode: 'ec2', QuotaCode: 'L-DB2E81BA' }).resolves({ Quota: { Value: options.gpuQuota ?? 64 } });
}

beforeEach(() => {
  for (const mock of [cloudFormation, secrets, ec2, quotas, autoScaling]) mock.reset();
});

const statuses = (lines: { status: string; name: string }[]) => lines.map((line) => `${line.status} ${line.name}`);

describe('npm run check on AWS (CloudFormation, Secrets Manager, EC2 and Service Quotas mocked with aws-sdk-client-mock; the deployment itself is local mode)', () => {
  it('reads the stack, its secret, the quota and the fleet as the teardown would, then checks the stack’s FormUrl with the secret: GO', async () => {
    const { url } = await deployments.start([{}, {}]);
    await untilFree(url, 2);
    account({ formUrl: url });
    const report = await checkDeployment(target(2), probeOptions);
    expect(statuses(report.lines)).toEqual([
      'PASS stack',
      'PASS admin secret',
      'PASS quota',
      'PASS teardown',
      'PASS https',
      'PASS form',
      'PASS admin',
      'PASS expiry',
      'PASS vms',
      'PASS probe',
      'PASS probe',
    ]);
    expect(report.lines[2].message).toContain('2 × g4dn.xlarge need 8 vCPUs');
    expect(report.lines[3].message).toBe('npm run teardown with these flags finds 2 instances and the spares group Course-Spares');
    expect(report.go).toBe(true);
  });

  it('fails when fewer VMs registered than the deploy’s vmCount', async () => {
    const { url } = await deployments.start([{}]);
    await untilFree(url, 1);
    account({ formUrl: url });
    const report = await checkDeployment(target(3), probeOptions);
    expect(report.lines).toContainEqual(expect.objectContaining({ status: 'FAIL', name: 'vms', message: '1 of 3 VMs have registered' }));
    expect(report).toMatchObject({ go: false, problems: 1 });
  });

  it('warns when the quota leaves no room for a spare, and fails when the fleet itself does not fit', async () => {
    const { url } = await deployments.start([{}]);
    await untilFree(url, 1);
    account({ formUrl: url, gpuQuota: 8 });
    const tight = await checkDeployment(target(2), probeOptions);
    expect(tight.lines).toContainEqual(expect.objectContaining({ status: 'WARN', name: 'quota' }));
    quotas.on(GetServiceQuotaCommand).resolves({ Quota: { Value: 4 } });
    const short = await checkDeployment(target(2), probeOptions);
    expect(short.lines).toContainEqual(
      expect.objectContaining({ status: 'FAIL', name: 'quota', message: expect.stringContaining('4 vCPUs are missing') }),
    );
  });

  it('fails on a stack still deploying, and on one that does not exist, without calling the form', async () => {
    account({ formUrl: 'http://127.0.0.1:9', stack: { StackStatus: 'UPDATE_IN_PROGRESS' } });
    const deploying = await checkDeployment(target(2), probeOptions);
    expect(deploying.lines[0]).toMatchObject({
      status: 'FAIL',
      name: 'stack',
      message: 'Course is UPDATE_IN_PROGRESS',
      action: 'Wait for the deploy to end, then check again.',
    });
    expect(deploying.go).toBe(false);

    cloudFormation
      .on(DescribeStacksCommand)
      .rejects(Object.assign(new Error('Stack with id Course does not exist'), { name: 'ValidationError' }));
    const missing = await checkDeployment(target(2), probeOptions);
    expect(missing.lines).toEqual([
      expect.objectContaining({ status: 'FAIL', name: 'stack', message: expect.stringContaining('Stack with id Course does not exist') }),
    ]);
  });

  it('fails when the teardown could not read the fleet with these credentials', async () => {
    const { url } = await deployments.start([{}]);
    await untilFree(url, 1);
    account({ formUrl: url });
    autoScaling
      .on(DescribeAutoScalingGroupsCommand)
      .rejects(Object.assign(new Error('not authorized to perform autoscaling:DescribeAutoScalingGroups'), { name: 'AccessDenied' }));
    const report = await checkDeployment(target(1), probeOptions);
    expect(report.lines).toContainEqual(
      expect.objectContaining({ status: 'FAIL', name: 'teardown', message: expect.stringContaining('not authorized') }),
    );
    expect(report.go).toBe(false);
  });

  it('fails when the admin secret cannot be read, and checks the form without it', async () => {
    const { url } = await deployments.start([]);
    account({ formUrl: url });
    secrets
      .on(GetSecretValueCommand)
      .rejects(Object.assign(new Error('not authorized to perform secretsmanager:GetSecretValue'), { name: 'AccessDeniedException' }));
    const report = await checkDeployment(target(1), probeOptions);
    expect(statuses(report.lines)).toEqual([
      'PASS stack',
      'FAIL admin secret',
      'PASS quota',
      'PASS teardown',
      'PASS https',
      'PASS form',
      'FAIL admin',
    ]);
    expect(report.lines[1].message).toContain('AccessDeniedException');
  });
});
