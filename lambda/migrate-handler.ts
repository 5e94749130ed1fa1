import { createLogger } from '../core/log';
import { migrate } from '../core/migrations';
import { dataApiSqlFromEnv } from './data-api-env';

const log = createLogger('json');
const sql = dataApiSqlFromEnv(process.env);

interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  PhysicalResourceId?: string;
}

/**
 * CloudFormation custom resource (via the CDK Provider framework): applies the same
 * migrations as local mode on every create and update; idempotent. Delete keeps the data.
 */
export async function handler(event: CustomResourceEvent): Promise<{ PhysicalResourceId: string; Data: { applied: string } }> {
  const physicalId = event.PhysicalResourceId ?? 'lablink-schema';
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalId, Data: { applied: '' } };
  const applied = await migrate(sql);
  log.info('schema.migrated', { applied: applied.join(',') || 'none' });
  return { PhysicalResourceId: physicalId, Data: { applied: applied.join(',') } };
}
