import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { DataApiSql } from './data-api-sql';

/** The Data API executor from the environment the stack sets; created once per Lambda container. */
export function dataApiSqlFromEnv(env: NodeJS.ProcessEnv): DataApiSql {
  const resourceArn = env.LABLINK_DB_CLUSTER_ARN;
  const secretArn = env.LABLINK_DB_SECRET_ARN;
  const database = env.LABLINK_DB_NAME;
  if (!resourceArn || !secretArn || !database) {
    throw new Error('LABLINK_DB_CLUSTER_ARN, LABLINK_DB_SECRET_ARN and LABLINK_DB_NAME must be set.');
  }
  return new DataApiSql(new RDSDataClient({}), { resourceArn, secretArn, database });
}
