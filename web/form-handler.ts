import { idleReleaseFromEnv } from '../core/idle-release';
import { pricingFromEnv } from '../core/cost';
import { linePolicyFromEnv } from '../store/waiting-line';
import { handle } from 'hono/aws-lambda';
import { createLogger } from '../core/log';
import { adminSecretFromSecretsManager } from './admin-secret';
import { dataApiSqlFromEnv } from '../store/data-api-env';
import { createServedWebApp } from './web-app';
import { addressLimitFromEnv, lambdaSourceIp } from './client-address';

const log = createLogger('json');
const adminSecretArn = process.env.LABLINK_ADMIN_SECRET_ARN;
if (!adminSecretArn) throw new Error('LABLINK_ADMIN_SECRET_ARN must be set.');

/** API Gateway (HTTP API) entry: the participant form and the admin dashboard over the Data API. */
export const handler = handle(
  createServedWebApp({
    sql: dataApiSqlFromEnv(process.env),
    log,
    adminSecret: adminSecretFromSecretsManager(adminSecretArn),
    accessCode: process.env.LABLINK_ACCESS_CODE || undefined,
    expiresAt: process.env.LABLINK_EXPIRES_AT || undefined,
    addressLimit: addressLimitFromEnv(process.env),
    clientAddress: lambdaSourceIp,
    idleRelease: idleReleaseFromEnv(process.env),
    pricing: pricingFromEnv(process.env),
    line: linePolicyFromEnv(process.env),
  }),
);
