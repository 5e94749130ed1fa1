import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { EC2Client } from '@aws-sdk/client-ec2';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ServiceQuotasClient } from '@aws-sdk/client-service-quotas';
import { CheckLine } from '../core/go-no-go';
import { FleetPlan, checkFleetQuota } from '../lib/quota-preflight';
import { planTeardown } from '../lib/teardown';

export interface AwsClients {
  cloudFormation: CloudFormationClient;
  secrets: SecretsManagerClient;
  ec2: EC2Client;
  quotas: ServiceQuotasClient;
  autoScaling: AutoScalingClient;
}

/** What the URL checks need from the stack; undefined parts could not be read (a FAIL says why). */
export interface StackFindings {
  lines: CheckLine[];
  formUrl?: string;
  adminSecret?: string;
}

const COMPLETE = new Set(['CREATE_COMPLETE', 'UPDATE_COMPLETE']);
const pass = (name: string, message: string): CheckLine => ({ status: 'PASS', name, message });
const fail = (name: string, message: string, action: string): CheckLine => ({ status: 'FAIL', name, message, action });

function judgeStatus(stackName: string, status: string, reason: string | undefined): CheckLine {
  if (COMPLETE.has(status)) return pass('stack', `${stackName} is ${status}`);
  if (status === 'UPDATE_ROLLBACK_COMPLETE') {
    return {
      status: 'WARN',
      name: 'stack',
      message: `${stackName}'s last update was rolled back: it runs the deploy before`,
      action: 'See the stack events in the CloudFormation console, fix the cause, and deploy again.',
    };
  }
  if (status.endsWith('_IN_PROGRESS')) return fail('stack', `${stackName} is ${status}`, 'Wait for the deploy to end, then check again.');
  return fail(
    'stack',
    `${stackName} is ${status}${reason ? `: ${reason}` : ''}`,
    'See the stack events in the CloudFormation console (docs/troubleshooting.md), then deploy again.',
  );
}

async function readSecret(secrets: SecretsManagerClient, secretName: string): Promise<{ line: CheckLine; value?: string }> {
  try {
    const value = (await secrets.send(new GetSecretValueCommand({ SecretId: secretName }))).SecretString;
    if (!value) return { line: fail('admin secret', `${secretName} holds no text`, 'Deploy again: the stack generates it.') };
    return { line: pass('admin secret', `read ${secretName}`), value };
  } catch (error) {
    return {
      line: fail(
        'admin secret',
        `cannot read ${secretName}: ${(error as Error).name}: ${(error as Error).message}`,
        'Use the credentials you deployed with (secretsmanager:GetSecretValue on it).',
      ),
    };
  }
}

/** The fleet can run, and one more VM fits beside it for a spare to replace a failed one. */
async function checkQuota(clients: AwsClients, plan: FleetPlan, region: string): Promise<CheckLine> {
  try {
    const fleet = await checkFleetQuota(plan, clients.ec2, clients.quotas, region);
    if (!fleet.ok) return fail('quota', fleet.message, 'Ask AWS for more (the message says how), or deploy fewer VMs.');
    const withSpare = await checkFleetQuota({ ...plan, vmCount: plan.vmCount + 1 }, clients.ec2, clients.quotas, region);
    if (!withSpare.ok)
      return {
        status: 'WARN',
        name: 'quota',
        message: `no quota left for a spare: ${withSpare.message}`,
        action: 'A failed VM cannot be replaced during the workshop unless the quota grows.',
      };
    return pass('quota', fleet.message.replace(/^OK: /, ''));
  } catch (error) {
    return fail(
      'quota',
      `cannot read the quota: ${(error as Error).message}`,
      'Check the credentials and the region (npm run preflight reads the same).',
    );
  }
}

/** `npm run teardown` with the same flags would find the fleet and its spares group (its read-only part, run now). */
async function checkTeardown(clients: AwsClients, stackName: string): Promise<CheckLine> {
  try {
    const plan = await planTeardown(clients.ec2, clients.autoScaling, stackName);
    if (!plan.sparesGroup)
      return {
        status: 'WARN',
        name: 'teardown',
        message: `npm run teardown finds ${plan.instances.length} instances but no spares group of ${stackName}`,
        action: 'Deploy the current LabLink; until then end spares by hand after the workshop.',
      };
    return pass(
      'teardown',
      `npm run teardown with these flags finds ${plan.instances.length} instances and the spares group ${plan.sparesGroup}`,
    );
  } catch (error) {
    return fail(
      'teardown',
      `npm run teardown could not read the fleet: ${(error as Error).message}`,
      'Use credentials that may describe EC2 instances and Auto Scaling groups: the teardown needs them after the workshop.',
    );
  }
}

/** The stack is complete, its admin secret readable, the account has room for the fleet and a spare, and the teardown can read the fleet. */
export async function runStackChecks(
  clients: AwsClients,
  stackName: string,
  plan: Omit<FleetPlan, 'stackName'>,
  region: string,
): Promise<StackFindings> {
  let stack;
  try {
    [stack] = (await clients.cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }))).Stacks ?? [];
  } catch (error) {
    return {
      lines: [
        fail(
          'stack',
          `cannot read ${stackName} in ${region}: ${(error as Error).message}`,
          'Check the stack name (-c stackName=…), the region and your credentials.',
        ),
      ],
    };
  }
  if (!stack?.StackStatus)
    return {
      lines: [
        fail(
          'stack',
          `${stackName} does not exist in ${region}`,
          'Deploy it (npx cdk deploy with the same -c flags), or pass the right region.',
        ),
      ],
    };
  const lines = [judgeStatus(stackName, stack.StackStatus, stack.StackStatusReason)];
  const outputs = Object.fromEntries((stack.Outputs ?? []).map((output) => [output.OutputKey, output.OutputValue]));
  if (!outputs.FormUrl || !outputs.AdminSecretName) {
    lines.push(fail('outputs', `${stackName} has no FormUrl or AdminSecretName output`, 'Deploy the current LabLink, then check again.'));
    return { lines };
  }
  const secret = await readSecret(clients.secrets, outputs.AdminSecretName);
  lines.push(secret.line, await checkQuota(clients, { ...plan, stackName }, region), await checkTeardown(clients, stackName));
  return { lines, formUrl: outputs.FormUrl, adminSecret: secret.value };
}
