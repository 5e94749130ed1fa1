import { Duration, IgnoreMode, Stack } from 'aws-cdk-lib';
import { IAutoScalingGroup } from 'aws-cdk-lib/aws-autoscaling';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { IVpc, Port, SecurityGroup, SubnetType } from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import {
  Cluster,
  ContainerImage,
  ContainerInsights,
  CpuArchitecture,
  ContainerDefinition,
  FargateService,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
  Secret as EcsSecret,
} from 'aws-cdk-lib/aws-ecs';
import { ApplicationLoadBalancer, ApplicationProtocol, ApplicationTargetGroup } from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { DatabaseCluster } from 'aws-cdk-lib/aws-rds';
import { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { REPLACED_TAG } from '../contract/wire';
import { IDLE_TIMEOUT_MARGIN_SECONDS } from '../contract/timeouts';
import { DATABASE_NAME } from './database';
import { onFleetInstances, terminationProtectionRight } from './fleet-rights';
import { REPO_ROOT } from './node-function';

export const ALLOCATOR_PORT = 8080;
/** The files and folders allocator/Dockerfile copies from the repository. */
export const ALLOCATOR_IMAGE_SOURCES = [
  'allocator',
  'contract',
  'core',
  'http',
  'store',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
];
/** Fargate waits at most this long between SIGTERM and SIGKILL. */
export const FARGATE_MAX_STOP_TIMEOUT_SECONDS = 120;
const STOP_MARGIN_SECONDS = 10;
/** The longest hold a deployment may use: the task's stop timeout must cover it. */
export const MAX_DEPLOYED_HOLD_SECONDS = FARGATE_MAX_STOP_TIMEOUT_SECONDS - STOP_MARGIN_SECONDS;

export function allocatorStopTimeoutSeconds(holdSeconds: number): number {
  return Math.min(FARGATE_MAX_STOP_TIMEOUT_SECONDS, holdSeconds + STOP_MARGIN_SECONDS);
}

export interface AllocatorServiceProps {
  readonly vpc: IVpc;
  readonly cluster: DatabaseCluster;
  /** The app role's credentials, which the tasks sign in with: never the owner's. */
  readonly appSecret: ISecret;
  /** The fleet's name: VMs are recognised by the tag `lablink:fleet=<fleetName>`. */
  readonly fleetName: string;
  /** Only for LabLink-compatible clients without an identity document. @default none: EC2 identity only */
  readonly fleetTokenSecret?: ISecret;
  /** Seconds a VM's poll is held before "nothing yet". */
  readonly holdSeconds: number;
  /** @default 1 */
  readonly taskCount?: number;
  /** Free VMs the warm pool keeps running. @default none: every VM runs */
  readonly warmVms?: number;
  /** LABLINK_RELEASE_*_MINUTES: when VMs held by nobody go back to the pool. */
  readonly idleReleaseEnv: Record<string, string>;
}

/**
 * The allocator on ECS Fargate behind an internal ALB: it holds the VMs' long-polls,
 * which Lambda cannot. One LISTEN connection per task on the writer endpoint, over TLS
 * verified against the RDS CA bundle baked into the image. VMs prove which instance they
 * are with their signed instance identity document.
 */
export class AllocatorService extends Construct {
  public readonly service: FargateService;
  public readonly loadBalancer: ApplicationLoadBalancer;
  public readonly targetGroup: ApplicationTargetGroup;
  /** The URL agents poll, reachable only inside the VPC. */
  public readonly url: string;
  private readonly task: FargateTaskDefinition;
  private readonly container: ContainerDefinition;
  private readonly fleetName: string;

  constructor(scope: Construct, id: string, props: AllocatorServiceProps) {
    super(scope, id);
    const { vpc, cluster } = props;
    const ecsCluster = new Cluster(this, 'Cluster', { vpc, containerInsightsV2: ContainerInsights.ENABLED });

    this.fleetName = props.fleetName;
    const task = new FargateTaskDefinition(this, 'Task', {
      cpu: 256,
      memoryLimitMiB: 512,
      runtimePlatform: { cpuArchitecture: CpuArchitecture.X86_64, operatingSystemFamily: OperatingSystemFamily.LINUX },
    });
    this.task = task;
    this.container = task.addContainer('allocator', {
      image: ContainerImage.fromAsset(REPO_ROOT, {
        file: 'allocator/Dockerfile',
        // Only what the Dockerfile copies: anything else (a `cdk synth -o` folder inside the
        // repository, caches, node_modules) would be copied into the context, recursively.
        exclude: ['*', ...ALLOCATOR_IMAGE_SOURCES.map((source) => `!${source}`)],
        ignoreMode: IgnoreMode.DOCKER,
        platform: Platform.LINUX_AMD64,
      }),
      portMappings: [{ containerPort: ALLOCATOR_PORT }],
      environment: {
        PORT: String(ALLOCATOR_PORT),
        LABLINK_HOLD_SECONDS: String(props.holdSeconds),
        ...(props.warmVms !== undefined ? { LABLINK_WARM_VMS: String(props.warmVms) } : {}),
        ...props.idleReleaseEnv,
        LABLINK_LOG_FORMAT: 'json',
        PGHOST: cluster.clusterEndpoint.hostname,
        PGPORT: String(cluster.clusterEndpoint.port),
        PGDATABASE: DATABASE_NAME,
        LABLINK_DATABASE_CA_FILE: '/app/rds-ca.pem',
        LABLINK_IDENTITY_MODE: 'ec2',
        LABLINK_FLEET_NAME: props.fleetName,
        LABLINK_AWS_ACCOUNT: Stack.of(this).account,
      },
      secrets: {
        PGUSER: EcsSecret.fromSecretsManager(props.appSecret, 'username'),
        PGPASSWORD: EcsSecret.fromSecretsManager(props.appSecret, 'password'),
        ...(props.fleetTokenSecret ? { LABLINK_FLEET_TOKEN: EcsSecret.fromSecretsManager(props.fleetTokenSecret) } : {}),
      },
      logging: LogDrivers.awsLogs({
        streamPrefix: 'allocator',
        logGroup: new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH }),
      }),
      // At least one hold, so a poll held when the task is told to stop still ends with an answer.
      stopTimeout: Duration.seconds(allocatorStopTimeoutSeconds(props.holdSeconds)),
    });

    // Which instance a VM is: DescribeInstances has no resource-level permissions, so "*" it is (read-only).
    task.addToTaskRolePolicy(new PolicyStatement({ actions: ['ec2:DescribeInstances'], resources: ['*'] }));
    // Reboot sick VMs and the warm pool's stops and starts, on this fleet's instances only.
    task.addToTaskRolePolicy(onFleetInstances(this, props.fleetName, ['ec2:RebootInstances', 'ec2:StartInstances', 'ec2:StopInstances']));
    // Protect VMs with a participant from deletion, and lift it again: that attribute and no other (not a stopped VM's user-data).
    task.addToTaskRolePolicy(terminationProtectionRight(this, props.fleetName, ['true', 'false']));

    const serviceSecurityGroup = new SecurityGroup(this, 'ServiceSecurityGroup', {
      vpc,
      description: 'LabLink allocator tasks: inbound only from the internal load balancer',
      allowAllOutbound: true,
    });
    this.service = new FargateService(this, 'Service', {
      cluster: ecsCluster,
      taskDefinition: task,
      desiredCount: props.taskCount ?? 1,
      // Public subnets with a public IP reach ECR and Secrets Manager without a NAT gateway.
      assignPublicIp: true,
      vpcSubnets: { subnetType: SubnetType.PUBLIC },
      securityGroups: [serviceSecurityGroup],
      minHealthyPercent: 100,
      circuitBreaker: { rollback: true },
      // Time to reach the database and LISTEN before the first health check counts.
      healthCheckGracePeriod: Duration.seconds(60),
    });
    cluster.connections.allowDefaultPortFrom(this.service, 'allocator tasks to PostgreSQL');

    this.loadBalancer = new ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc,
      internetFacing: false,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
      idleTimeout: Duration.seconds(props.holdSeconds + IDLE_TIMEOUT_MARGIN_SECONDS),
      dropInvalidHeaderFields: true,
    });
    const listener = this.loadBalancer.addListener('Http', { port: 80, protocol: ApplicationProtocol.HTTP, open: false });
    this.targetGroup = listener.addTargets('Allocator', {
      port: ALLOCATOR_PORT,
      protocol: ApplicationProtocol.HTTP,
      targets: [this.service],
      healthCheck: { path: '/api/health', interval: Duration.seconds(15), healthyThresholdCount: 2 },
      // A rolling update drains a task before stopping it: long enough for every held poll to end.
      deregistrationDelay: Duration.seconds(props.holdSeconds + IDLE_TIMEOUT_MARGIN_SECONDS),
    });
    this.url = `http://${this.loadBalancer.loadBalancerDnsName}`;
  }

  /**
   * Turns on replacing failed VMs from `spares`: the allocator sets the group's desired
   * capacity, ends a failed spare, and tags the failed instance replaced and a new spare with
   * its name. Nothing else in the group, no other tag. The fleet's names (`<prefix>-1` to
   * `<prefix>-<vmCount>`) tell it which spares a smaller fleet no longer needs.
   */
  replaceFrom(spares: IAutoScalingGroup, names: { prefix: string; vmCount: number }): void {
    this.container.addEnvironment('LABLINK_SPARES_GROUP', spares.autoScalingGroupName);
    this.container.addEnvironment('LABLINK_VM_NAME_PREFIX', names.prefix);
    this.container.addEnvironment('LABLINK_VM_COUNT', String(names.vmCount));
    this.task.addToTaskRolePolicy(
      new PolicyStatement({
        actions: ['autoscaling:SetDesiredCapacity', 'autoscaling:TerminateInstanceInAutoScalingGroup'],
        resources: [spares.autoScalingGroupArn],
      }),
    );
    this.task.addToTaskRolePolicy(
      onFleetInstances(this, this.fleetName, ['ec2:CreateTags'], {
        'ForAllValues:StringEquals': { 'aws:TagKeys': ['Name', REPLACED_TAG] },
      }),
    );
  }

  /** Lets VMs in `peer` reach the allocator. */
  allowAgentsFrom(peer: SecurityGroup): void {
    this.loadBalancer.connections.allowFrom(peer, Port.tcp(80), 'LabLink agents');
  }
}
