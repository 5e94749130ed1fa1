import { DescribeInstanceTypesCommand, EC2Client, paginateDescribeInstances, paginateDescribeVolumes } from '@aws-sdk/client-ec2';
import { GetServiceQuotaCommand, ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { FLEET_TAG } from '../contract/wire';
import { fleetInstances } from '../web/termination-protection';

/** An EC2 "Running On-Demand … instances" quota: counted in vCPUs, per region. */
export interface VcpuQuota {
  readonly code: string;
  readonly name: string;
}

const STANDARD: VcpuQuota = { code: 'L-1216C47A', name: 'Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances' };
const GPU: VcpuQuota = { code: 'L-DB2E81BA', name: 'Running On-Demand G and VT instances' };

/** Quotas by instance family (the letters before the generation digit); hpc, mac and u- have quotas of their own. */
const QUOTA_BY_FAMILY: Record<string, VcpuQuota> = {
  a: STANDARD,
  c: STANDARD,
  d: STANDARD,
  h: STANDARD,
  i: STANDARD,
  im: STANDARD,
  is: STANDARD,
  m: STANDARD,
  r: STANDARD,
  t: STANDARD,
  z: STANDARD,
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
  readonly instanceType: string;
  /** The most VMs the fleet may run at once. */
  readonly vmCount: number;
  /** Each VM's gp3 root volume, in GiB. */
  readonly volumeGb: number;
  /** This deployment's stack: its own running VMs are not counted as other usage (a redeploy). */
  readonly stackName: string;
}

export interface PreflightResult {
  readonly ok: boolean;
  readonly message: string;
}

/** Reads the account's quota and current usage and says whether the whole fleet can run. */
export async function checkFleetQuota(
  plan: FleetPlan,
  ec2: EC2Client,
  quotas: ServiceQuotasClient,
  region: string,
): Promise<PreflightResult> {
  const quota = quotaForInstanceType(plan.instanceType);
  if (!quota) {
    return {
      ok: false,
      message: `LabLink does not know which EC2 quota ${plan.instanceType} counts against; check it in the Service Quotas console for ${region}.`,
    };
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

/** EBS's regional quota on all gp3 volumes together, in TiB (50 by default); every VM's root volume is gp3. */
export const GP3_STORAGE_QUOTA = { serviceCode: 'ebs', code: 'L-7A658B76', name: 'Storage for General Purpose SSD (gp3) volumes, in TiB' };
const GIB_PER_TIB = 1024;

/** Reads the account's gp3 storage quota and the gp3 volumes that exist, and says whether every VM's disk fits. */
export async function checkStorageQuota(
  plan: FleetPlan,
  ec2: EC2Client,
  quotas: ServiceQuotasClient,
  region: string,
): Promise<PreflightResult> {
  const limitTib =
    (await quotas.send(new GetServiceQuotaCommand({ ServiceCode: GP3_STORAGE_QUOTA.serviceCode, QuotaCode: GP3_STORAGE_QUOTA.code }))).Quota
      ?.Value ?? 0;
  const usedGib = await gp3GibInUse(ec2, plan.stackName);
  const neededGib = plan.vmCount * plan.volumeGb;
  const limitGib = limitTib * GIB_PER_TIB;
  const summary =
    `${plan.vmCount} × ${plan.volumeGb} GiB root volumes need ${neededGib} GiB of "${GP3_STORAGE_QUOTA.name}" (${GP3_STORAGE_QUOTA.code}) in ${region}; ` +
    `the quota is ${limitTib} TiB (${limitGib} GiB), other gp3 volumes use ${usedGib} GiB`;
  if (neededGib + usedGib <= limitGib) return { ok: true, message: `OK: ${summary}.` };
  const desiredTib = Math.ceil((neededGib + usedGib) / GIB_PER_TIB);
  return {
    ok: false,
    message:
      `The fleet's disks do not fit: ${summary}, so ${neededGib + usedGib - limitGib} GiB are missing. ` +
      `Use a smaller volumeGb, or ask AWS for ${desiredTib} TiB: Service Quotas console → Amazon Elastic Block Store (Amazon EBS) → "${GP3_STORAGE_QUOTA.name}", or ` +
      `aws service-quotas request-service-quota-increase --region ${region} --service-code ${GP3_STORAGE_QUOTA.serviceCode} --quota-code ${GP3_STORAGE_QUOTA.code} --desired-value ${desiredTib}`,
  };
}

/** GiB of this account's gp3 volumes, in any state, other than those attached to this fleet's instances (a redeploy). */
async function gp3GibInUse(ec2: EC2Client, stackName: string): Promise<number> {
  const own = new Set((await fleetInstances(ec2, stackName)).map((instance) => instance.instanceId));
  let total = 0;
  for await (const page of paginateDescribeVolumes({ client: ec2 }, { Filters: [{ Name: 'volume-type', Values: ['gp3'] }] })) {
    for (const volume of page.Volumes ?? []) {
      if (volume.Attachments?.some((attachment) => attachment.InstanceId && own.has(attachment.InstanceId))) continue;
      total += volume.Size ?? 0;
    }
  }
  return total;
}
