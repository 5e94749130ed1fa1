import { AutoScalingClient, SetDesiredCapacityCommand, TerminateInstanceInAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import { CreateTagsCommand, EC2Client, ModifyInstanceAttributeCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { REPLACED_TAG } from '../contract/wire';
import { instanceGone } from './instance-state';

/** What replacing failed VMs needs from AWS: the fleet's spares group and its instances. */
export interface SparesGroup {
  /**
   * Takes a failed instance out of the fleet. A spare is terminated and its group starts
   * another; a named VM (CloudFormation's) is marked replaced and stopped, which keeps its
   * stack consistent and its disk for inspection. `gone`: the instance no longer exists.
   */
  retire(instanceId: string, spare: boolean): Promise<'retired' | 'gone'>;
  setDesiredCapacity(count: number): Promise<void>;
  /** Ends a spare the fleet no longer needs, and the group's capacity with it. */
  end(instanceId: string): Promise<void>;
  /** Shows the spare's name in the EC2 console; the allocator itself knows it from the database. */
  name(instanceId: string, hostname: string): Promise<void>;
}

export class AwsSparesGroup implements SparesGroup {
  constructor(
    private readonly ec2: EC2Client,
    private readonly autoScaling: AutoScalingClient,
    private readonly groupName: string,
  ) {}

  async retire(instanceId: string, spare: boolean): Promise<'retired' | 'gone'> {
    if (await instanceGone(this.ec2, instanceId)) return 'gone';
    if (spare) {
      await this.autoScaling.send(
        new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: instanceId, ShouldDecrementDesiredCapacity: false }),
      );
      return 'retired';
    }
    // Tagged first: from then on the instance is no fleet member, whether or not it stops.
    await this.ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: REPLACED_TAG, Value: new Date().toISOString() }] }));
    // A participant was moved off it, so it may still be protected: nothing would delete it when the fleet shrinks.
    await this.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: instanceId, DisableApiTermination: { Value: false } }));
    await this.ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId] }));
    return 'retired';
  }

  async end(instanceId: string): Promise<void> {
    if (await instanceGone(this.ec2, instanceId)) return;
    await this.autoScaling.send(
      new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: instanceId, ShouldDecrementDesiredCapacity: true }),
    );
  }

  async setDesiredCapacity(count: number): Promise<void> {
    await this.autoScaling.send(
      new SetDesiredCapacityCommand({ AutoScalingGroupName: this.groupName, DesiredCapacity: count, HonorCooldown: false }),
    );
  }

  async name(instanceId: string, hostname: string): Promise<void> {
    await this.ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: 'Name', Value: hostname }] }));
  }
}
