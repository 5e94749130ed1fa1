import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { CfnScheduledAction, IAutoScalingGroup } from 'aws-cdk-lib/aws-autoscaling';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { CfnSchedule } from 'aws-cdk-lib/aws-scheduler';
import { FargateService } from 'aws-cdk-lib/aws-ecs';
import { Construct } from 'constructs';
import type { FleetShard } from './client-fleet';
import { onFleetInstances, terminationProtectionRight } from './fleet-rights';
import { LabLinkFunction } from './node-function';

export interface FleetExpiryProps {
  /** UTC, ISO 8601 (2026-12-01T18:00Z). */
  readonly expiresAt: string;
  /** The nested stacks of VMs; each gets its own stop schedule, naming only its own instances. */
  readonly shards: FleetShard[];
  /** The spares group: no spare launches after the end, and the running ones are stopped. */
  readonly spares: IAutoScalingGroup;
  readonly allocator: FargateService;
  readonly fleetName: string;
}

/** The `at(...)` form EventBridge Scheduler takes: yyyy-mm-ddThh:mm:ss, no zone. */
export function schedulerAt(expiresAt: string): string {
  return `at(${new Date(expiresAt).toISOString().slice(0, 19)})`;
}

/** The StartTime Auto Scaling takes: YYYY-MM-DDThh:mm:ssZ, without the milliseconds of toISOString. */
export function autoScalingStartTime(expiresAt: string): string {
  return `${new Date(expiresAt).toISOString().slice(0, 19)}Z`;
}

/**
 * Stops the fleet's VMs and the allocator at `expiresAt`, so a forgotten workshop stops
 * costing money. EventBridge Scheduler calls the EC2 and ECS APIs directly (universal
 * targets); its role may stop only instances tagged with this fleet, and scale only this service.
 * The spares group's desired capacity drops to 0 then, so no spare launches afterwards, and a
 * small function lifts the termination protection the allocator kept on VMs with a participant
 * (so `cdk destroy` can delete them afterwards), then stops the spares already running: they have
 * no instance ids in the template, and their scale-in protection keeps a lower capacity from
 * ending them (see docs/architecture.md).
 */
export class FleetExpiry extends Construct {
  public readonly schedules: CfnSchedule[] = [];

  constructor(scope: Construct, id: string, props: FleetExpiryProps) {
    super(scope, id);
    const role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com'),
      description: 'LabLink: stop the fleet at its expiry time',
    });
    const stopFleetInstances = () => onFleetInstances(this, props.fleetName, ['ec2:StopInstances']);
    role.addToPolicy(stopFleetInstances());
    role.addToPolicy(new PolicyStatement({ actions: ['ecs:UpdateService'], resources: [props.allocator.serviceArn] }));

    const endFunction = new LabLinkFunction(this, 'EndFunction', {
      entry: 'web/expiry-handler.ts',
      environment: { LABLINK_SPARES_GROUP: props.spares.autoScalingGroupName, LABLINK_FLEET_NAME: props.fleetName },
      // A thousand VMs' protection is read one call each, a few at a time, slowed down when EC2 throttles.
      timeout: Duration.minutes(10),
    });
    endFunction.addToRolePolicy(stopFleetInstances());
    // Lifting termination protection: find the fleet's instances (DescribeInstances has no
    // resource-level permissions), read the attribute, set it to false and to nothing else.
    endFunction.addToRolePolicy(new PolicyStatement({ actions: ['ec2:DescribeInstances'], resources: ['*'] }));
    endFunction.addToRolePolicy(onFleetInstances(this, props.fleetName, ['ec2:DescribeInstanceAttribute']));
    endFunction.addToRolePolicy(terminationProtectionRight(this, props.fleetName, ['false']));
    endFunction.addToRolePolicy(
      new PolicyStatement({ actions: ['autoscaling:SuspendProcesses'], resources: [props.spares.autoScalingGroupArn] }),
    );
    // DescribeAutoScalingGroups has no resource-level permissions.
    endFunction.addToRolePolicy(new PolicyStatement({ actions: ['autoscaling:DescribeAutoScalingGroups'], resources: ['*'] }));
    endFunction.grantInvoke(role);
    Validations.of(this).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(endFunction.node.defaultChild as CfnFunction)}.Arn>:*]`,
      reason:
        'The expiry schedule may invoke any version of the one function that unprotects the VMs and stops the spares; CDK grants it that way.',
    });

    const at = schedulerAt(props.expiresAt);
    const schedule = (scope: Construct, name: string, arn: string, input: object) =>
      this.schedules.push(
        new CfnSchedule(scope, name, {
          description: `LabLink: ${name} at the workshop's end`,
          scheduleExpression: at,
          scheduleExpressionTimezone: 'UTC',
          flexibleTimeWindow: { mode: 'OFF' },
          target: { arn, roleArn: role.roleArn, input: Stack.of(scope).toJsonString(input), retryPolicy: { maximumRetryAttempts: 10 } },
        }),
      );
    for (const shard of props.shards) {
      schedule(shard, 'StopVms', 'arn:aws:scheduler:::aws-sdk:ec2:stopInstances', {
        InstanceIds: shard.instances.map((instance) => instance.instanceId),
      });
    }
    new CfnScheduledAction(this, 'NoMoreSpares', {
      autoScalingGroupName: props.spares.autoScalingGroupName,
      startTime: autoScalingStartTime(props.expiresAt),
      // Only the desired capacity: a maximum of 0 would outlive a later deploy that moves expiresAt.
      desiredCapacity: 0,
    });
    schedule(this, 'EndFleet', endFunction.functionArn, {});
    schedule(this, 'StopAllocator', 'arn:aws:scheduler:::aws-sdk:ecs:updateService', {
      Cluster: props.allocator.cluster.clusterName,
      Service: props.allocator.serviceName,
      DesiredCount: 0,
    });
  }
}
