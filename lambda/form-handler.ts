import { handle } from 'hono/aws-lambda';
import { createLogger } from '../core/log';
import { handleUnexpectedErrors } from '../http/errors';
import { dataApiSqlFromEnv } from './data-api-env';
import { createFormApp } from './form-app';

const log = createLogger('json');

/** API Gateway (HTTP API) entry: the participant form and API over the Data API. */
export const handler = handle(handleUnexpectedErrors(createFormApp({ sql: dataApiSqlFromEnv(process.env), log }), log));
