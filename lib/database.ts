import { CustomResource, Duration, RemovalPolicy } from 'aws-cdk-lib';
import { IVpc, SubnetType } from 'aws-cdk-lib/aws-ec2';
import { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import {
  AuroraPostgresEngineVersion,
  ClusterInstance,
  Credentials,
  DatabaseCluster,
  DatabaseClusterEngine,
  ParameterGroup,
} from 'aws-cdk-lib/aws-rds';
import { ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { createHash } from 'node:crypto';
import { APP_ROLE_NAME, appRoleStatement } from '../store/app-role';
import { MIGRATIONS } from '../store/migrations';
import { LabLinkFunction } from './node-function';

export interface DatabaseProps {
  readonly vpc: IVpc;
  /** Aurora Serverless v2 capacity range in ACUs. */
  readonly minCapacity: number;
  readonly maxCapacity: number;
}

export const DATABASE_NAME = 'lablink';

/** Environment the Data API executor reads (see store/data-api-env.ts): it signs in with `secret`. */
function dataApiEnvironment(cluster: DatabaseCluster, secret: ISecret): Record<string, string> {
  return {
    LABLINK_DB_CLUSTER_ARN: cluster.clusterArn,
    LABLINK_DB_SECRET_ARN: secret.secretArn,
    LABLINK_DB_NAME: DATABASE_NAME,
  };
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/**
 * Aurora PostgreSQL Serverless v2 with the Data API on (the Lambdas' way in), TLS forced,
 * credentials generated into Secrets Manager, and the schema migrated on deploy by a custom
 * resource that runs the same migrations as local mode, through the Data API, as the owner.
 * The allocator and the Lambdas sign in as the app role, which may only read and write rows.
 */
export class Database extends Construct {
  public readonly cluster: DatabaseCluster;
  /** The app role's credentials (`username`, `password`, and the cluster's address). */
  public readonly appSecret: ISecret;
  /** Done once the schema is migrated and the app role set up (and so the writer is up). */
  public readonly schema: CustomResource;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const engine = DatabaseClusterEngine.auroraPostgres({ version: AuroraPostgresEngineVersion.VER_16_9 });
    this.cluster = new DatabaseCluster(this, 'Cluster', {
      engine,
      writer: ClusterInstance.serverlessV2('Writer'),
      serverlessV2MinCapacity: props.minCapacity,
      serverlessV2MaxCapacity: props.maxCapacity,
      enableDataApi: true,
      credentials: Credentials.fromGeneratedSecret('lablink_admin'),
      defaultDatabaseName: DATABASE_NAME,
      vpc: props.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
      storageEncrypted: true,
      parameterGroup: new ParameterGroup(this, 'Parameters', { engine, parameters: { 'rds.force_ssl': '1' } }),
      backup: { retention: Duration.days(7) },
      removalPolicy: RemovalPolicy.SNAPSHOT,
    });

    // Attached, so it has the master secret's shape (host, port, engine), which the Data API knows.
    this.appSecret = new Secret(this, 'AppSecret', {
      description: 'LabLink: the database role the allocator and the form Lambda sign in as (rows only, no schema changes)',
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ username: APP_ROLE_NAME }),
        generateStringKey: 'password',
        passwordLength: 32,
        excludePunctuation: true,
      },
    }).attach(this.cluster);

    // The only function that signs in as the owner; it reads the app secret to set the role's password.
    const migrateFunction = new LabLinkFunction(this, 'MigrateFunction', {
      entry: 'web/migrate-handler.ts',
      environment: { ...dataApiEnvironment(this.cluster, this.cluster.secret!), LABLINK_APP_SECRET_ARN: this.appSecret.secretArn },
      timeout: Duration.minutes(5),
    });
    this.cluster.grantDataApiAccess(migrateFunction);
    this.appSecret.grantRead(migrateFunction);
    const provider = new Provider(this, 'MigrateProvider', { onEventHandler: migrateFunction });
    const noVerifier = { iterations: 0, salt: '', storedKey: '', serverKey: '' };
    this.schema = new CustomResource(this, 'Schema', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::LabLinkSchema',
      // A change in the migrations, in the role's grants or of the app secret changes these
      // properties, so CloudFormation runs the custom resource again.
      properties: {
        migrations: sha256(JSON.stringify(MIGRATIONS)),
        appRole: sha256(appRoleStatement(APP_ROLE_NAME, noVerifier)),
        appSecret: this.appSecret.secretArn,
      },
    });
    this.schema.node.addDependency(this.cluster);
  }

  /** Environment for a Lambda that uses the Data API as the app role. */
  appDataApiEnvironment(): Record<string, string> {
    return dataApiEnvironment(this.cluster, this.appSecret);
  }

  /**
   * Lets `grantee` run statements through the Data API as the app role. Unlike the cluster's
   * grantDataApiAccess, it cannot read the master secret, and it gets no transactions or batches,
   * which the Data API executor does not use.
   */
  grantAppDataApiAccess(grantee: IGrantable): void {
    Grant.addToPrincipal({ grantee, actions: ['rds-data:ExecuteStatement'], resourceArns: [this.cluster.clusterArn] });
    this.appSecret.grantRead(grantee);
  }
}
