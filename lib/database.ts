import { CustomResource, Duration, RemovalPolicy } from 'aws-cdk-lib';
import { IVpc, SubnetType } from 'aws-cdk-lib/aws-ec2';
import {
  AuroraPostgresEngineVersion,
  ClusterInstance,
  Credentials,
  DatabaseCluster,
  DatabaseClusterEngine,
  ParameterGroup,
} from 'aws-cdk-lib/aws-rds';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { createHash } from 'node:crypto';
import { MIGRATIONS } from '../core/migrations';
import { LabLinkFunction } from './node-function';

export interface DatabaseProps {
  vpc: IVpc;
  /** Aurora Serverless v2 capacity range in ACUs. */
  minCapacity: number;
  maxCapacity: number;
}

export const DATABASE_NAME = 'lablink';

/** Environment the Data API executor reads (see lambda/data-api-env.ts). */
export function dataApiEnvironment(cluster: DatabaseCluster): Record<string, string> {
  return {
    LABLINK_DB_CLUSTER_ARN: cluster.clusterArn,
    LABLINK_DB_SECRET_ARN: cluster.secret!.secretArn,
    LABLINK_DB_NAME: DATABASE_NAME,
  };
}

/**
 * Aurora PostgreSQL Serverless v2 with the Data API on (the Lambdas' way in), TLS forced,
 * credentials generated into Secrets Manager, and the schema migrated on deploy by a custom
 * resource that runs the same migrations as local mode, through the Data API.
 */
export class Database extends Construct {
  public readonly cluster: DatabaseCluster;
  /** Done once the schema is migrated (and so the writer is up). */
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

    const migrateFunction = new LabLinkFunction(this, 'MigrateFunction', {
      entry: 'lambda/migrate-handler.ts',
      environment: dataApiEnvironment(this.cluster),
      timeout: Duration.minutes(5),
    });
    this.cluster.grantDataApiAccess(migrateFunction);
    const provider = new Provider(this, 'MigrateProvider', { onEventHandler: migrateFunction });
    this.schema = new CustomResource(this, 'Schema', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::LabLinkSchema',
      // A change in the migrations changes this property, so CloudFormation runs them again.
      properties: { migrations: createHash('sha256').update(JSON.stringify(MIGRATIONS)).digest('hex') },
    });
    this.schema.node.addDependency(this.cluster);
  }
}
