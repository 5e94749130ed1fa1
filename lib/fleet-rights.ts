import { Stack } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { IConstruct } from 'constructs';
import { FLEET_TAG } from '../contract/wire';

/** `actions` on EC2 instances tagged `lablink:fleet=<fleetName>` only, so VMs added later and spares are covered too. */
export function onFleetInstances(
  scope: IConstruct,
  fleetName: string,
  actions: string[],
  conditions: Record<string, Record<string, unknown>> = {},
): PolicyStatement {
  const { partition, region, account } = Stack.of(scope);
  return new PolicyStatement({
    actions,
    resources: [`arn:${partition}:ec2:${region}:${account}:instance/*`],
    conditions: { StringEquals: { [`aws:ResourceTag/${FLEET_TAG}`]: fleetName }, ...conditions },
  });
}

/**
 * ModifyInstanceAttribute on this fleet's instances, for termination protection only: the
 * condition key `ec2:Attribute/DisableApiTermination` (AWS's Service Authorization Reference:
 * `ec2:Attribute/${AttributeName}`) holds the value a request sets, and is absent from a request
 * that changes any other attribute (user-data, instance type), which the condition then refuses.
 * `values`: what the role may set it to ('false' only, to lift it).
 */
export function terminationProtectionRight(scope: IConstruct, fleetName: string, values: ('true' | 'false')[]): PolicyStatement {
  return onFleetInstances(scope, fleetName, ['ec2:ModifyInstanceAttribute'], {
    StringEqualsIgnoreCase: { 'ec2:Attribute/DisableApiTermination': values },
  });
}
