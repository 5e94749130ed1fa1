import { Duration, Lazy, Stack, Tags } from 'aws-cdk-lib';
import {
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
import { FLEET_TAG } from '../core/wire';
import { AgentAsset } from './agent-asset';
import { renderClientUserData } from './user-data';

export interface ClientFleetProps {
  vpc: IVpc;
  vmCount: number;
  instanceType: string;
  /** A fixed AMI; otherwise `amiSsmParameter` names one. */
  amiId?: string;
  amiSsmParameter: string;
  volumeGb: number;
  /** VMs are named `<prefix>-1 … <prefix>-n`. */
  vmNamePrefix: string;
  allocatorUrl: string;
  /** How long `cdk deploy` waits for each new VM's boot script to report that its agent registered. @default 30 minutes */
  readyTimeout?: Duration;
}

export const DEFAULT_READY_TIMEOUT = Duration.minutes(30);

function machineImage(props: ClientFleetProps): IMachineImage {
  // Resolved when each instance launches: a newer AMI behind the parameter never replaces running VMs.
  if (!props.amiId) return MachineImage.resolveSsmParameterAtLaunch(props.amiSsmParameter, { os: OperatingSystemType.LINUX });
  const imageId = props.amiId;
  return { getImage: () => ({ imageId, osType: OperatingSystemType.LINUX, userData: UserData.forLinux() }) };
}

/**
 * The participants' VMs: `vmCount` instances with stable ids (`Vm1`, `Vm2`, …) so changing
 * the count adds or removes VMs at the end and leaves the others alone. IMDSv2 only, no
 * inbound rules, shell access through SSM Session Manager, the agent baked into user-data.
 */
export class ClientFleet extends Construct {
  public readonly instances: Instance[] = [];
  public readonly securityGroup: SecurityGroup;
  public readonly role: Role;

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
    // copies would make three resources a VM, and CloudFormation allows 500 in a stack.
    const instanceProfile = new InstanceProfile(this, 'InstanceProfile', { role: this.role });
    const launchTemplate = new LaunchTemplate(this, 'LaunchTemplate', { requireImdsv2: true });

    const agent = new AgentAsset(this, 'Agent', { readers: this.role });

    const image = machineImage(props);
    const stack = Stack.of(this);
    for (let index = 1; index <= props.vmCount; index += 1) {
      const vmName = `${props.vmNamePrefix}-${index}`;
      let instance: Instance | undefined;
      const userData = UserData.custom(
        renderClientUserData({
          vmName,
          allocatorUrl: props.allocatorUrl,
          agentUrl: agent.url,
          agentSha256: agent.sha256,
          stackName: stack.stackName,
          signalResource: Lazy.string({ produce: () => stack.getLogicalId(instance!.instance) }),
        }),
      );
      instance = new Instance(this, `Vm${index}`, {
        vpc: props.vpc,
        vpcSubnets: { subnetType: SubnetType.PUBLIC },
        instanceType: new InstanceType(props.instanceType),
        machineImage: image,
        securityGroup: this.securityGroup,
        instanceProfile,
        userData,
        // Editing the boot script must not replace a VM a participant is using.
        userDataCausesReplacement: false,
        blockDevices: [
          { deviceName: '/dev/sda1', volume: BlockDeviceVolume.ebs(props.volumeGb, { encrypted: true, volumeType: EbsDeviceVolumeType.GP3 }) },
        ],
        instanceName: vmName,
        // CloudFormation waits until the boot script reports the agent registered, or fails the deploy.
        resourceSignalTimeout: props.readyTimeout ?? DEFAULT_READY_TIMEOUT,
      });
      instance.instance.launchTemplate = { launchTemplateId: launchTemplate.launchTemplateId, version: launchTemplate.latestVersionNumber };
      Tags.of(instance).add(FLEET_TAG, Stack.of(this).stackName);
      this.instances.push(instance);
    }
  }
}
