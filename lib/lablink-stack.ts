import { idleReleaseEnv } from '../core/idle-release';
import { Annotations, CfnOutput, Stack, StackProps, Token } from 'aws-cdk-lib';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { apiThrottle } from './api-throttle';
import { AllocatorService } from './allocator-service';
import { FLEET_TAG } from '../contract/wire';
import { ClientFleet, ClientFleetProps } from './client-fleet';
import { LabLinkConfig } from './lablink-config';
import { Database } from './database';
import { FleetExpiry } from './fleet-expiry';
import { FormApi } from './form-api';
import { Operations } from './operations';
import { Network } from './network';
import { acknowledgeNagFindings } from './nag-acknowledgements';

export interface LabLinkStackProps extends StackProps {
  readonly config: LabLinkConfig;
  /** The region `cdk deploy` targets when the stack itself names none (the CLI's CDK_DEFAULT_REGION). @default none */
  readonly targetRegion?: string;
}

/**
 * Regions whose row in AWS's table "Supported Regions and Aurora DB engines for RDS Data API"
 * (Aurora PostgreSQL, Serverless v2 and provisioned) said "Not available" on 2026-12-01.
 */
export const REGIONS_WITHOUT_DATA_API = ['ap-south-2', 'ap-southeast-4', 'ap-southeast-6'];

/** One LabLink deployment: network, database, allocator, participant form and the client VMs. */
export class LabLinkStack extends Stack {
  public readonly network: Network;
  public readonly database: Database;
  public readonly allocator: AllocatorService;
  public readonly formApi: FormApi;
  public readonly fleet: ClientFleet;
  public readonly operations: Operations;
  public readonly expiry?: FleetExpiry;
  public readonly adminSecret: Secret;
  /** Only with `allowFleetToken`: for LabLink-compatible clients. */
  public readonly fleetTokenSecret?: Secret;

  constructor(scope: Construct, id: string, props: LabLinkStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.refuseUndeployable(config, Token.isUnresolved(this.region) ? props.targetRegion : this.region);

    if (config.allowFleetToken) {
      this.fleetTokenSecret = new Secret(this, 'FleetToken', {
        description: 'LabLink: the shared token LabLink-compatible clients present to the allocator',
        generateSecretString: { passwordLength: 48, excludePunctuation: true },
      });
    }
    this.adminSecret = new Secret(this, 'AdminSecret', {
      description: 'LabLink: the admin dashboard password (user "admin")',
      generateSecretString: { passwordLength: 32, excludePunctuation: true },
    });

    this.network = new Network(this, 'Network');
    this.database = new Database(this, 'Database', {
      vpc: this.network.vpc,
      minCapacity: config.dbMinCapacity,
      maxCapacity: config.dbMaxCapacity,
    });
    const releaseEnv = idleReleaseEnv({
      failedAfterSeconds: config.releaseFailedAfterMinutes * 60,
      unconnectedAfterSeconds: config.releaseUnconnectedAfterMinutes * 60,
    });
    this.allocator = new AllocatorService(this, 'Allocator', {
      vpc: this.network.vpc,
      cluster: this.database.cluster,
      appSecret: this.database.appSecret,
      fleetName: this.stackName,
      fleetTokenSecret: this.fleetTokenSecret,
      holdSeconds: config.holdSeconds,
      taskCount: config.allocatorTasks,
      warmVms: config.warmVms,
      idleReleaseEnv: releaseEnv,
    });
    this.formApi = new FormApi(this, 'FormApi', {
      database: this.database,
      adminSecret: this.adminSecret,
      accessCode: config.accessCode,
      expiresAt: config.expiresAt,
      addressLimit: { vms: config.vmsPerAddress, windowSeconds: config.vmsPerAddressMinutes * 60 },
      idleReleaseEnv: releaseEnv,
      lineTurnSeconds: config.lineTurnMinutes * 60,
      pricing: { instanceType: config.instanceType, hourlyPrice: config.hourlyPrice },
      throttle: apiThrottle(config.vmCount, config.apiRateLimit),
    });
    this.fleet = new ClientFleet(this, 'Fleet', {
      vpc: this.network.vpc,
      vmCount: config.vmCount,
      instanceType: config.instanceType,
      amiId: config.amiId,
      amiSsmParameter: config.amiSsmParameter,
      volumeGb: config.volumeGb,
      vmNamePrefix: config.vmNamePrefix,
      allocatorUrl: this.allocator.url,
      setup: workshopSetup(config),
    });
    this.allocator.allowAgentsFrom(this.fleet.securityGroup);
    this.allocator.replaceFrom(this.fleet.spares, { prefix: config.vmNamePrefix, vmCount: config.vmCount });
    // Tasks start once the database is up and migrated, so the first deployment does not roll back;
    // both sign in as the app role, which the same custom resource sets up.
    this.allocator.service.node.addDependency(this.database.schema);
    this.formApi.handler.node.addDependency(this.database.schema);

    this.operations = new Operations(this, 'Operations', {
      fleetName: this.stackName,
      allocatorTargets: this.allocator.targetGroup,
      formFunction: this.formApi.handler,
      alarmEmail: config.alarmEmail,
    });
    if (config.expiresAt) {
      this.expiry = new FleetExpiry(this, 'Expiry', {
        expiresAt: config.expiresAt,
        shards: this.fleet.shards,
        spares: this.fleet.spares,
        allocator: this.allocator.service,
        fleetName: this.stackName,
      });
    }

    new CfnOutput(this, 'FormUrl', { value: this.formApi.url, description: 'Give this to participants' });
    new CfnOutput(this, 'AdminUrl', { value: `${this.formApi.url}admin`, description: 'Admin dashboard (user "admin")' });
    new CfnOutput(this, 'AdminSecretName', {
      value: this.adminSecret.secretName,
      description: 'Admin password: aws secretsmanager get-secret-value --query SecretString --output text --secret-id <this>',
    });
    new CfnOutput(this, 'AllocatorUrl', { value: this.allocator.url, description: 'Internal: what the VMs poll (inside the VPC only)' });
    // A list of 1,000 instance ids would not fit an output: the command lists them instead.
    new CfnOutput(this, 'ListVmsCommand', {
      value: `aws ec2 describe-instances --filters Name=tag:${FLEET_TAG},Values=${this.stackName} --query "Reservations[].Instances[].[Tags[?Key=='Name']|[0].Value,InstanceId,State.Name]" --output text`,
      description: 'Lists the client VMs with their instance ids (connect with: aws ssm start-session --target <id>)',
    });
    new CfnOutput(this, 'SparesGroup', {
      value: this.fleet.spares.autoScalingGroupName,
      description: 'The Auto Scaling group of spares that replace failed VMs (npm run teardown ends them)',
    });

    acknowledgeNagFindings(this, this.fleet.spares);
  }

  /**
   * Errors as annotations, not exceptions: `cdk deploy` and `cdk synth` stop on them, while
   * `cdk destroy` does not check them, so the workshop's own flags (a past `expiresAt`) still
   * tear it down afterwards.
   */
  private refuseUndeployable(config: LabLinkConfig, region: string | undefined): void {
    if (config.expiresAt && !(Date.parse(config.expiresAt) > Date.now())) {
      Annotations.of(this).addError(`expiresAt must lie in the future to deploy (got ${config.expiresAt}); cdk destroy accepts it.`);
    }
    if (region && REGIONS_WITHOUT_DATA_API.includes(region)) {
      Annotations.of(this).addError(
        `Region ${region} has no RDS Data API for Aurora PostgreSQL, which the form's Lambda functions use; deploy to another region (see the README).`,
      );
    }
  }
}

/** The workshop setup's context keys, or undefined when none is set. */
function workshopSetup(config: LabLinkConfig): ClientFleetProps['setup'] {
  const { setupScript, setupCheck, repository, repositoryRef, containerImage } = config;
  if (!setupScript && !setupCheck && !repository && !containerImage) return undefined;
  return { scriptFile: setupScript, check: setupCheck, repository, repositoryRef, containerImage };
}
