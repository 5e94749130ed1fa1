import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  SuspendProcessesCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { FLEET_TAG, SPARE_TAG } from '../contract/wire';
import { FleetInstance, fleetInstances, liftTerminationProtection, protectedInstances } from '../web/termination-protection';

/** What ending a workshop finds in the account before it changes anything. */
export interface TeardownPlan {
  readonly fleetName: string;
  /** Every existing instance of the fleet, running or stopped. */
  readonly instances: FleetInstance[];
  /** Those CloudFormation could not delete: EC2 termination protection is on. */
  readonly protectedInstances: FleetInstance[];
  readonly sparesGroup?: string;
  /** Spares the group still has: scale-in protected, they would hold up the group's deletion. */
  readonly spares: string[];
}

const ENDING = /^(Terminating|Terminated)/;

async function sparesGroupOf(autoScaling: AutoScalingClient, fleetName: string): Promise<{ name?: string; spares: string[] }> {
  const answer = await autoScaling.send(
    new DescribeAutoScalingGroupsCommand({
      Filters: [
        { Name: `tag:${FLEET_TAG}`, Values: [fleetName] },
        { Name: `tag:${SPARE_TAG}`, Values: ['true'] },
      ],
    }),
  );
  const group = answer.AutoScalingGroups?.[0];
  const spares = (group?.Instances ?? [])
    .filter((instance) => !ENDING.test(instance.LifecycleState ?? ''))
    .flatMap((instance) => (instance.InstanceId ? [instance.InstanceId] : []));
  return { name: group?.AutoScalingGroupName, spares };
}

/** Reads the fleet's instances, their termination protection and the running spares; changes nothing. */
export async function planTeardown(ec2: EC2Client, autoScaling: AutoScalingClient, fleetName: string): Promise<TeardownPlan> {
  const instances = await fleetInstances(ec2, fleetName);
  const group = await sparesGroupOf(autoScaling, fleetName);
  return {
    fleetName,
    instances,
    protectedInstances: await protectedInstances(ec2, instances),
    sparesGroup: group.name,
    spares: group.spares,
  };
}

export function describePlan(plan: TeardownPlan): string {
  const names = (instances: FleetInstance[]) =>
    instances.map((instance) => (instance.name ? `${instance.name} (${instance.instanceId})` : instance.instanceId)).join(', ');
  return [
    `Fleet ${plan.fleetName}: ${plan.instances.length} instances, running or stopped.`,
    plan.protectedInstances.length > 0
      ? `Termination protection, which would make cdk destroy fail, is on for ${plan.protectedInstances.length}: ${names(plan.protectedInstances)}.`
      : 'No instance has termination protection.',
    plan.spares.length > 0
      ? `${plan.spares.length} spares in ${plan.sparesGroup}, which would hold up cdk destroy: ${plan.spares.join(', ')}.`
      : 'No spare left in the spares group.',
  ].join('\n');
}

/**
 * Ends the workshop: lifts termination protection from every fleet instance (read again, in
 * case the allocator protected one since the plan), keeps the spares group from launching
 * (the allocator, if it still runs, may raise its capacity again), ends every spare through
 * Auto Scaling (despite their scale-in protection), and only then runs `destroy`.
 * Stops before `destroy` when a step fails: running it again is safe.
 */
export async function tearDown(
  ec2: EC2Client,
  autoScaling: AutoScalingClient,
  plan: TeardownPlan,
  destroy: () => Promise<number>,
  say: (line: string) => void,
): Promise<number> {
  const lifted = await liftTerminationProtection(ec2, plan.fleetName);
  say(`Termination protection lifted from ${lifted.length} instances.`);
  if (plan.sparesGroup) {
    await autoScaling.send(new SuspendProcessesCommand({ AutoScalingGroupName: plan.sparesGroup, ScalingProcesses: ['Launch'] }));
    const { spares } = await sparesGroupOf(autoScaling, plan.fleetName);
    for (const instanceId of spares) {
      await autoScaling
        .send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: instanceId, ShouldDecrementDesiredCapacity: true }))
        .catch((error: Error) => {
          throw new Error(`Could not end the spare ${instanceId}: ${error.message}. Nothing was destroyed; run the teardown again.`);
        });
    }
    say(`Spares ended: ${spares.length}.`);
  }
  return destroy();
}
