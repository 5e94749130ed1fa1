import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { parseArgs } from 'node:util';
import { PROBE_EMAIL } from '../contract/wire';
import { deploymentFromFlags } from '../lib/cli-context';
import { LabLinkConfig } from '../lib/lablink-config';
import { runMain } from '../local/run-main';
import { formatReport } from '../check/report';
import { CheckTarget, checkDeployment } from '../check/check-deployment';

const USAGE = `Usage: npm run check -- --url <base URL> [--expect-vms <n>] [options]
       npm run check -- [-c key=value …] [--stack <name>] [--region <region>] [options]

Tells whether a deployed LabLink will work: one line PASS, WARN or FAIL per check, with what to
do, then GO or NO-GO (n problems); exit status 0 for GO, 1 for NO-GO, 2 when it cannot run.

By URL (any running LabLink, local mode too), the admin secret in LABLINK_ADMIN_SECRET: the form
and its security headers, HTTPS, the admin secret, expiresAt, every VM registered, healthy, set up
and free, and one probe participant (${PROBE_EMAIL}) sent through the form with
a code Google refuses: its VM's start-host must report Google's refusal, then the VM is released,
reset and free again. The result is stored for the admin dashboard.

On AWS, with the same -c flags as cdk deploy and your AWS credentials: the stack is complete,
its admin secret readable, the EC2 quota has room for the fleet and a spare, npm run teardown with
the same flags can read the fleet and its spares group; then the checks above
against the stack's FormUrl, expecting vmCount VMs.

  --url <base URL>       check this LabLink (no AWS calls)
  -c key=value           the deploy's context flags (stackName, vmCount, instanceType, …)
  --stack <name>         the stack's name (the same as -c stackName=<name>)
  --region <region>      the AWS region, else the AWS SDK's usual settings
  --expect-vms <n>       with --url: how many VMs there should be
  --access-code <code>   the workshop's access code, if participants need one
  --probe-timeout <s>    how long the probe waits for start-host and for the reset (default 300)
  --json                 print the result as JSON`;

function wholeNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`--${name} must be a whole number, not "${value}".`);
  return Number(value);
}

runMain(async () => {
  let values;
  let expectedVms: number | undefined;
  let probeSeconds: number | undefined;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: 'string' },
        context: { type: 'string', short: 'c', multiple: true },
        stack: { type: 'string' },
        region: { type: 'string' },
        'expect-vms': { type: 'string' },
        'access-code': { type: 'string' },
        'probe-timeout': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
    expectedVms = wholeNumber('expect-vms', values['expect-vms']);
    probeSeconds = wholeNumber('probe-timeout', values['probe-timeout']);
    if (values.url !== undefined && (values.context !== undefined || values.stack !== undefined))
      throw new Error('Pass either --url or the deploy’s -c flags (or --stack), not both.');
    if (values.url !== undefined && !/^https?:\/\/[^\s/]+/.test(values.url))
      throw new Error(`--url must be an http(s) address, not "${values.url}".`);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }

  const options = { accessCode: values['access-code'], probeTimeoutMs: probeSeconds === undefined ? undefined : probeSeconds * 1000 };
  let target: CheckTarget;
  if (values.url !== undefined) {
    target = { kind: 'url', url: values.url, adminSecret: process.env.LABLINK_ADMIN_SECRET || undefined, expectedVms };
  } else {
    let deployment: { config: LabLinkConfig; stackName: string };
    try {
      deployment = deploymentFromFlags([...(values.context ?? []), ...(values.stack === undefined ? [] : [`stackName=${values.stack}`])]);
    } catch (error) {
      console.error((error as Error).message);
      return 2;
    }
    const clients = {
      cloudFormation: new CloudFormationClient({ region: values.region }),
      secrets: new SecretsManagerClient({ region: values.region }),
      ec2: new EC2Client({ region: values.region }),
      quotas: new ServiceQuotasClient({ region: values.region }),
      autoScaling: new AutoScalingClient({ region: values.region }),
    };
    const region = await clients.cloudFormation.config.region().catch(() => undefined);
    if (!region) {
      console.error('No AWS region: pass --region or set AWS_REGION.');
      return 2;
    }
    const { config, stackName } = deployment;
    target = {
      kind: 'stack',
      clients,
      region,
      stackName,
      plan: { instanceType: config.instanceType, vmCount: config.vmCount, volumeGb: config.volumeGb },
    };
  }
  const report = await checkDeployment(target, options);
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.go ? 0 : 1;
});
