import { CheckLine, CheckReport, reportOf } from '../core/go-no-go';
import { FleetPlan } from '../lib/quota-preflight';
import { AwsClients, runStackChecks } from './stack-checks';
import { UrlCheckOptions, postResult, runUrlChecks } from './url-checks';

/** A LabLink by its URL and admin secret, or an AWS deployment by its stack, read with the instructor's credentials. */
export type CheckTarget =
  | ({ kind: 'url' } & Pick<UrlCheckOptions, 'url' | 'adminSecret' | 'expectedVms'>)
  | { kind: 'stack'; clients: AwsClients; region: string; stackName: string; plan: Omit<FleetPlan, 'stackName'> };

/** Runs every check the target allows, stores the result on the deployment for its dashboard, and says GO or NO-GO. */
export async function checkDeployment(
  target: CheckTarget,
  options: Pick<UrlCheckOptions, 'accessCode' | 'probeTimeoutMs' | 'pollMs'> = {},
): Promise<CheckReport> {
  const lines: CheckLine[] = [];
  let url: UrlCheckOptions | undefined;
  if (target.kind === 'url') {
    url = target;
  } else {
    const stack = await runStackChecks(target.clients, target.stackName, target.plan, target.region);
    lines.push(...stack.lines);
    if (stack.formUrl) url = { url: stack.formUrl, adminSecret: stack.adminSecret, expectedVms: target.plan.vmCount };
  }
  if (url) {
    const checked = await runUrlChecks({ ...url, ...options });
    lines.push(...checked.lines);
    const stored = checked.adminWorks ? await postResult(url, lines) : undefined;
    if (stored) lines.push(stored);
  }
  return reportOf(lines);
}
