import { FlowLogDestination, FlowLogTrafficType, IpAddresses, SubnetType, Vpc } from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';

export interface NetworkProps {
  /** Availability zones to spread over. @default 2 */
  readonly maxAzs?: number;
}

/**
 * Public subnets for the client VMs (they reach Google's CRD servers directly; no NAT
 * gateway to pay for) and the allocator tasks; isolated subnets for the database and the
 * internal load balancer. Nothing is reachable from the internet: security groups admit
 * no inbound traffic from outside the VPC.
 */
export class Network extends Construct {
  public readonly vpc: Vpc;

  constructor(scope: Construct, id: string, props: NetworkProps = {}) {
    super(scope, id);
    this.vpc = new Vpc(this, 'Vpc', {
      ipAddresses: IpAddresses.cidr('10.40.0.0/16'),
      maxAzs: props.maxAzs ?? 2,
      natGateways: 0,
      subnetConfiguration: [
        // /22: room for about a thousand VMs per zone.
        { name: 'public', subnetType: SubnetType.PUBLIC, cidrMask: 22 },
        { name: 'isolated', subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      flowLogs: { rejected: { destination: FlowLogDestination.toCloudWatchLogs(), trafficType: FlowLogTrafficType.REJECT } },
    });
  }
}
