import { DescribeInstanceTypesCommand, EC2Client, paginateDescribeInstances } from '@aws-sdk/client-ec2';
import { GetServiceQuotaCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { FLEET_TAG } from '../core/wire';

/** An EC2 "Running On-Demand … instances" quota: counted in vCPUs, per region. */
export interface VcpuQuota {
  code: string;
  name: string;
}

const STANDARD: VcpuQuota = { code: 'L-1216C47A', name: 'Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances' };
const GPU: VcpuQuota = { code: 'L-DB2E81BA', name: 'Running On-Demand G and VT instances' };

/** Quotas by instance family (the letters before the generation digit); hpc, mac and u- have quotas of their own. */
const QUOTA_BY_FAMILY: Record<string, VcpuQuota> = {
  a: STANDARD, c: STANDARD, d: STANDARD, h: STANDARD, i: STANDARD, im: STANDARD, is: STANDARD, m: STANDARD, r: STANDARD, t: STANDARD, z: STANDARD,
  g: GPU,
  gr: GPU,
  vt: GPU,
  p: { code: 'L-417A185B', name: 'Running On-Demand P instances' },
  f: { code: 'L-74FC7D96', name: 'Running On-Demand F instances' },
  x: { code: 'L-7295265B', name: 'Running On-Demand X instances' },
  inf: { code: 'L-1945791B', name: 'Running On-Demand Inf instances' },
  trn: { code: 'L-2C3B7624', name: 'Running On-Demand Trn instances' },
  dl: { code: 'L-6E869C2A', name: 'Running On-Demand DL instances' },
};

/** The vCPU quota an instance type draws on, or undefined for families this check does not know. */
export function quotaForInstanceType(instanceType: string): VcpuQuota | undefined {
  const family = /^[a-z]+/.exec(instanceType)?.[0] ?? '';
  return Object.hasOwn(QUOTA_BY_FAMILY, family) ? QUOTA_BY_FAMILY[family] : undefined;
}

export interface FleetPlan {
  instanceType: string;
  /** The most VMs the fleet may run at once. */
  vmCount: number;
  /** This deployment's stack: its own running VMs are not counted as other usage (a redeploy). */
  stackName: string;
}

export interface PreflightResult {
  ok: boolean;
  message: string;
}

/** Reads the account's quota and current usage and says whether the whole fleet can run. */
export async function checkFleetQuota(plan: FleetPlan, ec2: EC2Client, quotas: ServiceQuotasClient, region: string): Promise<PreflightResult> {
  const quota = quotaForInstanceType(plan.instanceType);
  if (!quota) {
    return { ok: false, message: `LabLink does not know which EC2 quota ${plan.instanceType} counts against; check it in the Service Quotas console for ${region}.` };
  }
  const vcpusPerVm = await vcpusOf(ec2, plan.instanceType, region);
  const limit = (await quotas.send(new GetServiceQuotaCommand({ ServiceCode: 'ec2', QuotaCode: quota.code }))).Quota?.Value ?? 0;
  const used = await vcpusInUse(ec2, quota, plan.stackName);
  const needed = vcpusPerVm * plan.vmCount;
  const summary = `${plan.vmCount} × ${plan.instanceType} need ${needed} vCPUs of "${quota.name}" (${quota.code}) in ${region}; the quota is ${limit}, other instances use ${used}`;
  if (needed + used <= limit) return { ok: true, message: `OK: ${summary}.` };
  const desired = needed + used;
  return {
    ok: false,
    message:
      `The fleet cannot start: ${summary}, so ${needed + used - limit} vCPUs are missing. ` +
      `Ask AWS for ${desired} (it can take a day or more): Service Quotas console → Amazon EC2 → "${quota.name}", or ` +
      `aws service-quotas request-service-quota-increase --region ${region} --service-code ec2 --quota-code ${quota.code} --desired-value ${desired}`,
  };
}

async function vcpusOf(ec2: EC2Client, instanceType: string, region: string): Promise<number> {
  try {
    const answer = await ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: [instanceType as never] }));
    const vcpus = answer.InstanceTypes?.[0]?.VCpuInfo?.DefaultVCpus;
    if (vcpus) return vcpus;
  } catch (error) {
    if ((error as { name?: string }).name !== 'InvalidInstanceType') throw error;
  }
  throw new Error(`The instance type ${instanceType} is not offered in ${region}; choose another with -c instanceType=….`);
}

/** vCPUs of this account's pending and running instances on the same quota, other than this fleet's. */
async function vcpusInUse(ec2: EC2Client, quota: VcpuQuota, stackName: string): Promise<number> {
  let total = 0;
  const pages = paginateDescribeInstances({ client: ec2 }, { Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running'] }] });
  for await (const page of pages) {
    for (const instance of (page.Reservations ?? []).flatMap((reservation) => reservation.Instances ?? [])) {
      if (instance.Tags?.some((tag) => tag.Key === FLEET_TAG && tag.Value === stackName)) continue;
      if (quotaForInstanceType(instance.InstanceType ?? '')?.code !== quota.code) continue;
      total += (instance.CpuOptions?.CoreCount ?? 1) * (instance.CpuOptions?.ThreadsPerCore ?? 1);
    }
  }
  return total;
}
