import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { deploymentFromFlags } from '../lib/cli-context';
import { REPO_ROOT } from '../lib/node-function';
import { describePlan, planTeardown, tearDown } from '../lib/teardown';
import { runMain } from '../local/run-main';

const USAGE = `Usage: npm run teardown -- [-c key=value …] [--region <region>] [--yes]

Ends a workshop for good, before or after its expiresAt: lifts the EC2 termination protection
the allocator keeps on VMs with a participant, ends the spares, then runs cdk destroy. Pass the
same -c flags as to cdk deploy. Without --yes it only says what it found and changes nothing.
The region is --region, else the AWS SDK's usual settings.`;

/** `cdk destroy` of this stack with the deploy's flags; its output goes straight to the terminal. */
function cdkDestroy(stackName: string, flags: string[], region: string): Promise<number> {
  const args = ['destroy', stackName, '--force', ...flags.flatMap((flag) => ['-c', flag])];
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(REPO_ROOT, 'node_modules/.bin/cdk'), args, {
      cwd: REPO_ROOT,
      stdio: 'inherit',
      env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', AWS_REGION: region, AWS_DEFAULT_REGION: region },
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

runMain(async () => {
  const { values } = parseArgs({
    options: {
      context: { type: 'string', short: 'c', multiple: true },
      region: { type: 'string' },
      yes: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const flags = values.context ?? [];
  let stackName: string;
  try {
    ({ stackName } = deploymentFromFlags(flags));
  } catch (error) {
    console.error((error as Error).message);
    return 1;
  }
  // Adaptive retries slow the calls down when EC2 answers RequestLimitExceeded (a fleet of 1,000 makes 1,000 reads).
  const ec2 = new EC2Client({ region: values.region, retryMode: 'adaptive', maxAttempts: 10 });
  const autoScaling = new AutoScalingClient({ region: values.region, retryMode: 'adaptive', maxAttempts: 10 });
  const region = await ec2.config.region().catch(() => undefined);
  if (!region) {
    console.error('No AWS region: pass --region or set AWS_REGION.');
    return 2;
  }
  const plan = await planTeardown(ec2, autoScaling, stackName);
  console.log(describePlan(plan));
  if (!values.yes) {
    console.log(`Nothing changed. To lift the protection, end the spares and destroy ${stackName} in ${region}, run it again with --yes.`);
    return 0;
  }
  return tearDown(ec2, autoScaling, plan, () => cdkDestroy(stackName, flags, region), console.log);
});
