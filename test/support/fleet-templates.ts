import { Template } from 'aws-cdk-lib/assertions';
import { LabLinkStack } from '../../lib/lablink-stack';

/** The templates of the nested stacks that hold the VMs, in VM order. */
export function shardTemplates(stack: LabLinkStack): Template[] {
  return stack.fleet.shards.map((shard) => Template.fromStack(shard));
}

/** Every VM's instance resource, keyed `<shard>/<logical id>`. */
export function fleetInstances(stack: LabLinkStack): ReturnType<Template['findResources']> {
  return Object.fromEntries(
    stack.fleet.shards.flatMap((shard) =>
      Object.entries(Template.fromStack(shard).findResources('AWS::EC2::Instance')).map(([id, resource]) => [
        `${shard.node.id}/${id}`,
        resource,
      ]),
    ),
  );
}
