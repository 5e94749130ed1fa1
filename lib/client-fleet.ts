import type { LabLinkConfig } from './lablink-config';
import { Duration, Lazy, NestedStack, Stack, Tags } from 'aws-cdk-lib';
import { AutoScalingGroup } from 'aws-cdk-lib/aws-autoscaling';
import {
  BlockDevice,
  BlockDeviceVolume,
  EbsDeviceVolumeType,
  IMachineImage,
  Instance,
  InstanceType,
  IVpc,
  LaunchTemplate,
  MachineImage,
  OperatingSystemType,
  SecurityGroup,
  SubnetType,
  UserData,
} from 'aws-cdk-lib/aws-ec2';
import { InstanceProfile, ManagedPolicy, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { FLEET_TAG, SPARE_TAG } from '../contract/wire';
import { AgentAsset, VmFileAsset } from './agent-asset';
import { VmSetupOptions, renderClientUserData } from './user-data';

/** The fleet's size, machine and names as the workshop's config gives them (see LabLinkConfig for each field). */
export interface ClientFleetProps extends Pick<
  LabLinkConfig,
  'vmCount' | 'instanceType' | 'amiId' | 'amiSsmParameter' | 'volumeGb' | 'vmNamePrefix'
> {
  readonly vpc: IVpc;
  readonly allocatorUrl: string;
  /**
   * How long `cdk deploy` waits for each new VM's boot script to report that its agent
   * registered (and its setup passed). @default 30 minutes, or 150 with a setup
   */
  readonly readyTimeout?: Duration;
  /** The workshop's own software on every VM (see LabLinkConfig); the script is a local file. @default none */
  readonly setup?: Omit<VmSetupOptions, 'script'> & { readonly scriptFile?: string };
}

export const DEFAULT_READY_TIMEOUT = Duration.minutes(30);
/** Longer than the boot, the registration and the boot script's wait for the setup together. */
export const DEFAULT_READY_TIMEOUT_WITH_SETUP = Duration.minutes(150);

function machineImage(props: ClientFleetProps): IMachineImage {
  // Resolved when each instance launches: a newer AMI behind the parameter never replaces running VMs.
  if (!props.amiId) return MachineImage.resolveSsmParameterAtLaunch(props.amiSsmParameter, { os: OperatingSystemType.LINUX });
  const imageId = props.amiId;
  return { getImage: () => ({ imageId, osType: OperatingSystemType.LINUX, userData: UserData.forLinux() }) };
}

/** The root volume of every client VM, named or spare. */
function rootVolume(volumeGb: number): BlockDevice {
  return { deviceName: '/dev/sda1', volume: BlockDeviceVolume.ebs(volumeGb, { encrypted: true, volumeType: EbsDeviceVolumeType.GP3 }) };
}

/**
 * VMs per nested stack. Each VM's boot script (about 8.5 KB in the template) makes a VM
 * the bulk of a template, and CloudFormation takes at most 1 MB of template and 500
 * resources per stack: 80 VMs fill about 70 % of the size and 16 % of the resources.
 */
export const VMS_PER_SHARD = 80;

/**
 * Nested stacks of VMs CloudFormation creates at once: shard k waits for shard k − SHARDS_PER_WAVE.
 * At most 320 VMs launch together, so a first deploy of 1,000 does not empty EC2's RunInstances
 * bucket of 1,000 instances, which refills at 2 a second (see docs/architecture.md).
 */
export const SHARDS_PER_WAVE = 4;

interface FleetShardProps extends ClientFleetProps {
  readonly first: number;
  readonly last: number;
  /** The parent stack's name: the fleet tag the allocator checks. */
  readonly fleetName: string;
  readonly securityGroup: SecurityGroup;
  readonly instanceProfile: InstanceProfile;
  readonly launchTemplate: LaunchTemplate;
  readonly agent: AgentAsset;
  /** The workshop setup with its script as an S3 object. @default none */
  readonly vmSetup?: VmSetupOptions;
  readonly image: IMachineImage;
}

/**
 * VMs `first` to `last` in a nested stack of their own. A shard always holds the same
 * numbers (1–80, 81–160, …), so a VM keeps its stack and logical id when the fleet grows.
 */
export class FleetShard extends NestedStack {
  public readonly instances: Instance[] = [];

  constructor(scope: Construct, id: string, props: FleetShardProps) {
    super(scope, id, { description: `LabLink client VMs ${props.first}-${props.last}`, suppressTemplateIndentation: true });
    const zones = props.vpc.publicSubnets;
    for (let index = props.first; index <= props.last; index += 1) {
      const vmName = `${props.vmNamePrefix}-${index}`;
      const userData = UserData.custom(
        renderClientUserData({
          vmName,
          allocatorUrl: props.allocatorUrl,
          agentUrl: props.agent.url,
          agentSha256: props.agent.sha256,
          // The VM signals its own resource, which lives in this nested stack.
          stackName: this.stackName,
          signalResource: Lazy.string({ produce: () => this.getLogicalId(instance.instance) }),
          setup: props.vmSetup,
        }),
      );
      const instance = new Instance(this, `Vm${index}`, {
        vpc: props.vpc,
        // Round-robin over the public subnets (one per zone) by the VM's number, so a VM keeps its zone
        // when the fleet grows, and one zone's outage or lack of capacity takes only its share of the fleet.
        vpcSubnets: { subnets: [zones[(index - 1) % zones.length]] },
        instanceType: new InstanceType(props.instanceType),
        machineImage: props.image,
        securityGroup: props.securityGroup,
        instanceProfile: props.instanceProfile,
        userData,
        // Editing the boot script must not replace a VM a participant is using.
        userDataCausesReplacement: false,
        blockDevices: [rootVolume(props.volumeGb)],
        instanceName: vmName,
        // CloudFormation waits until the boot script reports the agent registered, or fails the deploy.
        resourceSignalTimeout: props.readyTimeout ?? (props.vmSetup ? DEFAULT_READY_TIMEOUT_WITH_SETUP : DEFAULT_READY_TIMEOUT),
      });
      instance.instance.launchTemplate = {
        launchTemplateId: props.launchTemplate.launchTemplateId,
        version: props.launchTemplate.latestVersionNumber,
      };
      Tags.of(instance).add(FLEET_TAG, props.fleetName);
      this.instances.push(instance);
    }
  }
}

/**
 * The participants' VMs: `vmCount` instances with stable ids (`Vm1`, `Vm2`, …) in nested
 * stacks of VMS_PER_SHARD, so changing the count adds or removes VMs at the end and leaves
 * the others alone. IMDSv2 only, no inbound rules, shell access through SSM Session
 * Manager, the agent downloaded from S3 at boot.
 *
 * Beside them, the spares group: the same machine from a boot script without a name, up to
 * one spare per VM. The allocator alone sets its desired capacity when it replaces a failed VM;
 * a spare claims that VM's name at boot.
 */
export class ClientFleet extends Construct {
  public readonly shards: FleetShard[] = [];
  public readonly securityGroup: SecurityGroup;
  public readonly role: Role;
  public readonly spares: AutoScalingGroup;

  constructor(scope: Construct, id: string, props: ClientFleetProps) {
    super(scope, id);
    this.securityGroup = new SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'LabLink client VMs: no inbound traffic; outbound to Google CRD and the allocator',
      allowAllOutbound: true,
    });
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('ec2.amazonaws.com'),
      description: 'LabLink client VMs: SSM Session Manager only',
      managedPolicies: [ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });

    // One instance profile and one launch template (IMDSv2 only) for the whole fleet: per-VM
    // copies would make three resources a VM.
    const instanceProfile = new InstanceProfile(this, 'InstanceProfile', { role: this.role });
    const launchTemplate = new LaunchTemplate(this, 'LaunchTemplate', { requireImdsv2: true });
    const agent = new AgentAsset(this, 'Agent', { readers: this.role });
    const { scriptFile, ...setupValues } = props.setup ?? {};
    const setupScript = scriptFile ? new VmFileAsset(this, 'SetupScript', { file: scriptFile, readers: this.role }) : undefined;
    const vmSetup: VmSetupOptions | undefined = props.setup
      ? { ...setupValues, ...(setupScript ? { script: { url: setupScript.url, sha256: setupScript.sha256 } } : {}) }
      : undefined;
    const fleetName = Stack.of(this).stackName;
    const image = machineImage(props);
    const shared = { ...props, fleetName, securityGroup: this.securityGroup, instanceProfile, launchTemplate, agent, vmSetup, image };

    for (let first = 1; first <= props.vmCount; first += VMS_PER_SHARD) {
      const last = Math.min(props.vmCount, first + VMS_PER_SHARD - 1);
      this.shards.push(new FleetShard(this, `Vms${first}to${first + VMS_PER_SHARD - 1}`, { ...shared, first, last }));
    }
    this.shards.forEach((shard, index) => {
      if (index >= SHARDS_PER_WAVE) shard.addStackDependency(this.shards[index - SHARDS_PER_WAVE]);
    });

    const spareTemplate = new LaunchTemplate(this, 'SpareLaunchTemplate', {
      requireImdsv2: true,
      instanceType: new InstanceType(props.instanceType),
      machineImage: image,
      securityGroup: this.securityGroup,
      instanceProfile,
      blockDevices: [rootVolume(props.volumeGb)],
      userData: UserData.custom(
        renderClientUserData({ allocatorUrl: props.allocatorUrl, agentUrl: agent.url, agentSha256: agent.sha256, setup: vmSetup }),
      ),
    });
    // In the parent stack: it serves the whole fleet, while a nested stack holds fixed numbers and goes when vmCount shrinks below them.
    this.spares = new AutoScalingGroup(this, 'Spares', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      launchTemplate: spareTemplate,
      minCapacity: 0,
      maxCapacity: props.vmCount,
      // No desiredCapacity: a deploy would reset what the allocator set. Protected, so lowering
      // it never ends a spare someone works on; the allocator ends a failed spare by its id.
      newInstancesProtectedFromScaleIn: true,
    });
    // Tags at launch: the allocator admits a spare by them before it has a name.
    Tags.of(this.spares).add(FLEET_TAG, fleetName, { applyToLaunchedInstances: true });
    Tags.of(this.spares).add(SPARE_TAG, 'true', { applyToLaunchedInstances: true });
  }

  get instances(): Instance[] {
    return this.shards.flatMap((shard) => shard.instances);
  }
}
