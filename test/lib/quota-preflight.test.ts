import {
  DescribeInstancesCommand,
  DescribeInstanceTypesCommand,
  DescribeVolumesCommand,
  EC2Client,
  Instance,
  Volume,
} from '@aws-sdk/client-ec2';
import { GetServiceQuotaCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { mockClient } from 'aws-sdk-client-mock';
import { FLEET_TAG } from '../../contract/wire';
import { checkFleetQuota, checkStorageQuota, quotaForInstanceType } from '../../lib/quota-preflight';

const ec2 = new EC2Client({ region: 'eu-west-1' });
const quotas = new ServiceQuotasClient({ region: 'eu-west-1' });
const ec2Mock = mockClient(ec2);
const quotasMock = mockClient(quotas);

function running(instanceType: string, vcpus: number, fleet?: string): Instance {
  return {
    InstanceType: instanceType as never,
    CpuOptions: { CoreCount: vcpus / 2, ThreadsPerCore: 2 },
    Tags: fleet ? [{ Key: FLEET_TAG, Value: fleet }] : [],
  };
}

function account(options: { gpuQuota: number; instances: Instance[][] }): void {
  ec2Mock
    .on(DescribeInstanceTypesCommand, { InstanceTypes: ['g4dn.xlarge'] })
    .resolves({ InstanceTypes: [{ InstanceType: 'g4dn.xlarge', VCpuInfo: { DefaultVCpus: 4 } }] });
  options.instances.forEach((page, index) => {
    const NextToken = index + 1 < options.instances.length ? `page-${index + 1}` : undefined;
    ec2Mock
      .on(DescribeInstancesCommand, { NextToken: index === 0 ? undefined : `page-${index}` })
      .resolves({ Reservations: [{ Instances: page }], NextToken });
  });
  quotasMock.on(GetServiceQuotaCommand, { ServiceCode: 'ec2', QuotaCode: 'L-DB2E81BA' }).resolves({ Quota: { Value: options.gpuQuota } });
}

const gpuFleet = { instanceType: 'g4dn.xlarge', vmCount: 300, volumeGb: 40, stackName: 'Course' };

beforeEach(() => {
  ec2Mock.reset();
  quotasMock.reset();
});

describe('npm run preflight: EC2 vCPU quota (EC2 and Service Quotas mocked with aws-sdk-client-mock)', () => {
  test('a GPU fleet within the G and VT quota passes and says how much it uses', async () => {
    account({ gpuQuota: 1216, instances: [[running('g5.xlarge', 4), running('m5.large', 2)]] });
    const result = await checkFleetQuota(gpuFleet, ec2, quotas, 'eu-west-1');
    expect(result.ok).toBe(true);
    expect(result.message).toBe(
      'OK: 300 × g4dn.xlarge need 1200 vCPUs of "Running On-Demand G and VT instances" (L-DB2E81BA) in eu-west-1; the quota is 1216, other instances use 4.',
    );
  });

  test('a fleet beyond the quota is refused with the missing vCPUs and the request to make', async () => {
    account({ gpuQuota: 64, instances: [[running('g4dn.2xlarge', 8)], [running('g4dn.xlarge', 4)]] });
    const result = await checkFleetQuota(gpuFleet, ec2, quotas, 'eu-west-1');
    expect(result.ok).toBe(false);
    expect(result.message).toContain('the quota is 64, other instances use 12, so 1148 vCPUs are missing');
    expect(result.message).toContain(
      'aws service-quotas request-service-quota-increase --region eu-west-1 --service-code ec2 --quota-code L-DB2E81BA --desired-value 1212',
    );
  });

  test("the fleet's own running VMs are not other usage, so a redeploy of a full fleet passes", async () => {
    const ownVms = Array.from({ length: 300 }, () => running('g4dn.xlarge', 4, 'Course'));
    account({ gpuQuota: 1200, instances: [ownVms, [running('g4dn.xlarge', 4, 'OtherWorkshop')]] });
    expect((await checkFleetQuota({ ...gpuFleet, vmCount: 299 }, ec2, quotas, 'eu-west-1')).ok).toBe(true);
    expect((await checkFleetQuota(gpuFleet, ec2, quotas, 'eu-west-1')).ok).toBe(false);
  });

  test('an instance type the region does not offer is named', async () => {
    ec2Mock
      .on(DescribeInstanceTypesCommand)
      .rejects(Object.assign(new Error('The following supplied instance types do not exist'), { name: 'InvalidInstanceType' }));
    await expect(checkFleetQuota({ ...gpuFleet, instanceType: 'g9.xlarge' }, ec2, quotas, 'eu-west-1')).rejects.toThrow(
      'The instance type g9.xlarge is not offered in eu-west-1',
    );
  });

  test('an instance family without a known quota is refused with where to look, before any AWS call', async () => {
    const result = await checkFleetQuota({ ...gpuFleet, instanceType: 'u-6tb1.metal' }, ec2, quotas, 'eu-west-1');
    expect(result).toEqual({ ok: false, message: expect.stringContaining('does not know which EC2 quota u-6tb1.metal counts against') });
    expect(ec2Mock.calls()).toHaveLength(0);
  });
});

test('instance families map to their vCPU quotas', () => {
  expect(
    ['t3.large', 'm7i-flex.large', 'c7gn.xlarge', 'im4gn.large', 'r7iz.large'].map((type) => quotaForInstanceType(type)?.code),
  ).toEqual(Array(5).fill('L-1216C47A'));
  expect(['g4dn.xlarge', 'g6e.2xlarge', 'gr6.4xlarge', 'vt1.3xlarge'].map((type) => quotaForInstanceType(type)?.code)).toEqual(
    Array(4).fill('L-DB2E81BA'),
  );
  expect(quotaForInstanceType('p4d.24xlarge')?.code).toBe('L-417A185B');
  expect(quotaForInstanceType('inf2.xlarge')?.code).toBe('L-1945791B');
  expect(quotaForInstanceType('hpc7g.4xlarge')).toBeUndefined();
  expect(quotaForInstanceType('mac1.metal')).toBeUndefined();
});

describe('npm run preflight: EBS gp3 storage quota (EC2 and Service Quotas mocked with aws-sdk-client-mock)', () => {
  const thousandVms = { instanceType: 't3.large', vmCount: 1000, volumeGb: 40, stackName: 'Course' };
  const gp3 = (size: number, instanceId?: string): Volume => ({
    Size: size,
    VolumeType: 'gp3',
    Attachments: instanceId ? [{ InstanceId: instanceId }] : [],
  });

  function storage(options: { quotaTib: number; volumes: Volume[]; fleetInstanceIds?: string[] }): void {
    quotasMock.on(GetServiceQuotaCommand, { ServiceCode: 'ebs', QuotaCode: 'L-7A658B76' }).resolves({ Quota: { Value: options.quotaTib } });
    ec2Mock
      .on(DescribeInstancesCommand)
      .resolves({ Reservations: [{ Instances: (options.fleetInstanceIds ?? []).map((InstanceId) => ({ InstanceId })) }] });
    ec2Mock.on(DescribeVolumesCommand).resolves({ Volumes: options.volumes });
  }

  test('1,000 VMs of 51 GiB fit the default 50 TiB; of 52 GiB they do not, and the message says what to do', async () => {
    storage({ quotaTib: 50, volumes: [] });
    const fits = await checkStorageQuota({ ...thousandVms, volumeGb: 51 }, ec2, quotas, 'eu-west-1');
    expect(fits).toEqual({
      ok: true,
      message:
        'OK: 1000 × 51 GiB root volumes need 51000 GiB of "Storage for General Purpose SSD (gp3) volumes, in TiB" (L-7A658B76) in eu-west-1; the quota is 50 TiB (51200 GiB), other gp3 volumes use 0 GiB.',
    });
    const tooBig = await checkStorageQuota({ ...thousandVms, volumeGb: 52 }, ec2, quotas, 'eu-west-1');
    expect(tooBig.ok).toBe(false);
    expect(tooBig.message).toContain('so 800 GiB are missing. Use a smaller volumeGb, or ask AWS for 51 TiB');
    expect(tooBig.message).toContain(
      'aws service-quotas request-service-quota-increase --region eu-west-1 --service-code ebs --quota-code L-7A658B76 --desired-value 51',
    );
    // Only gp3 volumes count against this quota.
    expect(ec2Mock.commandCalls(DescribeVolumesCommand)[0].args[0].input.Filters).toEqual([{ Name: 'volume-type', Values: ['gp3'] }]);
  });

  test("other gp3 volumes count, detached ones too; the fleet's own disks do not (a redeploy)", async () => {
    storage({
      quotaTib: 50,
      volumes: [gp3(1000), gp3(500, 'i-other'), gp3(40, 'i-vm1'), gp3(40, 'i-vm2')],
      fleetInstanceIds: ['i-vm1', 'i-vm2'],
    });
    const result = await checkStorageQuota(thousandVms, ec2, quotas, 'eu-west-1');
    expect(result.message).toContain('other gp3 volumes use 1500 GiB');
    expect(result.ok).toBe(true);
    // The fleet's instances are found by its tag.
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)[0].args[0].input.Filters).toContainEqual({
      Name: 'tag:lablink:fleet',
      Values: ['Course'],
    });
    expect((await checkStorageQuota({ ...thousandVms, volumeGb: 50 }, ec2, quotas, 'eu-west-1')).ok).toBe(false);
  });
});
