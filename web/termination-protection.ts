import {
  DescribeInstanceAttributeCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
  paginateDescribeInstances,
} from '@aws-sdk/client-ec2';
import { FLEET_TAG } from '../contract/wire';

/** An instance in these states still exists, so CloudFormation must be able to delete it. */
const EXISTING_STATES = ['pending', 'running', 'stopping', 'stopped'];
/**
 * Calls in flight at once: a fleet of 1,000 makes 1,000 DescribeInstanceAttribute calls, which
 * EC2 counts against a per-account request bucket; a few at a time stay below it, and the SDK's
 * retries absorb the rest.
 */
const PARALLEL_CALLS = 4;

export interface FleetInstance {
  instanceId: string;
  /** The Name tag: the VM's name, or none for a spare that has not claimed one. */
  name?: string;
}

/** Every existing instance tagged `lablink:fleet=<fleetName>`: the named VMs, replaced ones and spares. */
export async function fleetInstances(ec2: EC2Client, fleetName: string): Promise<FleetInstance[]> {
  const found: FleetInstance[] = [];
  const pages = paginateDescribeInstances(
    { client: ec2 },
    {
      Filters: [
        { Name: `tag:${FLEET_TAG}`, Values: [fleetName] },
        { Name: 'instance-state-name', Values: EXISTING_STATES },
      ],
    },
  );
  for await (const page of pages) {
    for (const instance of (page.Reservations ?? []).flatMap((reservation) => reservation.Instances ?? [])) {
      if (instance.InstanceId)
        found.push({ instanceId: instance.InstanceId, name: instance.Tags?.find((tag) => tag.Key === 'Name')?.Value });
    }
  }
  return found;
}

async function eachInTurn<T, R>(items: T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_CALLS, items.length) }, worker));
  return results;
}

/** Those of `instances` with EC2 termination protection on (DescribeInstances does not say). */
export async function protectedInstances(ec2: EC2Client, instances: FleetInstance[]): Promise<FleetInstance[]> {
  const protection = await eachInTurn(instances, async (instance) => {
    const answer = await ec2.send(
      new DescribeInstanceAttributeCommand({ InstanceId: instance.instanceId, Attribute: 'disableApiTermination' }),
    );
    return answer.DisableApiTermination?.Value === true;
  });
  return instances.filter((_, index) => protection[index]);
}

/**
 * Lifts the termination protection the allocator keeps on every VM with a participant, so
 * `cdk destroy` (or a smaller fleet) can delete them. Returns the instances it lifted it on.
 */
export async function liftTerminationProtection(ec2: EC2Client, fleetName: string): Promise<FleetInstance[]> {
  const lifted = await protectedInstances(ec2, await fleetInstances(ec2, fleetName));
  await eachInTurn(lifted, (instance) =>
    ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: instance.instanceId, DisableApiTermination: { Value: false } })),
  );
  return lifted;
}
