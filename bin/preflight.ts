import { EC2Client } from '@aws-sdk/client-ec2';
import { ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { parseArgs } from 'node:util';
import { deploymentFromFlags } from '../lib/cli-context';
import { LabLinkConfig } from '../lib/lablink-config';
import { PreflightResult, checkFleetQuota, checkStorageQuota } from '../lib/quota-preflight';
import { runMain } from '../local/run-main';

const USAGE = `Usage: npm run preflight -- [-c key=value …] [--region <region>]

Reads this AWS account's EC2 vCPU quota for the fleet's instance type and the vCPUs other
instances already use, and its EBS gp3 storage quota and the gp3 volumes that exist, and
refuses (exit 1) when the whole fleet cannot run. Pass the same -c flags as to cdk deploy. The region is --region, else the AWS SDK's usual settings.`;

runMain(async () => {
  const { values } = parseArgs({
    options: { context: { type: 'string', short: 'c', multiple: true }, region: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  let deployment: { config: LabLinkConfig; stackName: string };
  try {
    deployment = deploymentFromFlags(values.context ?? []);
  } catch (error) {
    console.error((error as Error).message);
    return 1;
  }
  const ec2 = new EC2Client({ region: values.region });
  const quotas = new ServiceQuotasClient({ region: values.region });
  const region = await ec2.config.region().catch(() => undefined);
  if (!region) {
    console.error('No AWS region: pass --region or set AWS_REGION.');
    return 2;
  }
  const { config, stackName } = deployment;
  const plan = { instanceType: config.instanceType, vmCount: config.vmCount, volumeGb: config.volumeGb, stackName };
  let results: PreflightResult[];
  try {
    results = [await checkFleetQuota(plan, ec2, quotas, region), await checkStorageQuota(plan, ec2, quotas, region)];
  } catch (error) {
    console.error(`Preflight could not read the account in ${region}: ${(error as Error).message}`);
    return 2;
  }
  for (const result of results) (result.ok ? console.log : console.error)(result.message);
  return results.every((result) => result.ok) ? 0 : 1;
});
