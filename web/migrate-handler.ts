import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { AppRole, ensureAppRole } from '../store/app-role';
import { createLogger } from '../core/log';
import { migrate } from '../store/migrations';
import { dataApiSqlFromEnv } from '../store/data-api-env';

const log = createLogger('json');
// Runs as the cluster's owner (the master secret); the app role's secret is only read.
const sql = dataApiSqlFromEnv(process.env);
const appSecretArn = process.env.LABLINK_APP_SECRET_ARN ?? '';
if (!appSecretArn) throw new Error('LABLINK_APP_SECRET_ARN must be set.');
const secrets = new SecretsManagerClient({});

interface CustomResourceEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  PhysicalResourceId?: string;
}

/** The app role's credentials as the stack generates them: `{"username": …, "password": …}`. */
async function readAppRole(secretId: string): Promise<AppRole> {
  const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: secretId }));
  const { username, password } = JSON.parse(SecretString ?? '{}') as { username?: unknown; password?: unknown };
  if (typeof username !== 'string' || typeof password !== 'string')
    throw new Error("The app role's secret must hold a username and a password.");
  return { name: username, password };
}

/**
 * CloudFormation custom resource (via the CDK Provider framework): applies the same
 * migrations as local mode, then creates or updates the app role with the password from its
 * secret, on every create and update; idempotent. Delete keeps the data and the role.
 */
export async function handler(event: CustomResourceEvent): Promise<{ PhysicalResourceId: string; Data: { applied: string } }> {
  const physicalId = event.PhysicalResourceId ?? 'lablink-schema';
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalId, Data: { applied: '' } };
  const applied = await migrate(sql);
  const appRole = await readAppRole(appSecretArn);
  await ensureAppRole(sql, appRole);
  log.info('schema.migrated', { applied: applied.join(',') || 'none', appRole: appRole.name });
  return { PhysicalResourceId: physicalId, Data: { applied: applied.join(',') } };
}
