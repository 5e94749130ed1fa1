import { Context, Hono, MiddlewareHandler } from 'hono';
import { AddressLimit } from '../store/client-limits';
import { Pricing } from '../core/cost';
import { IdleReleasePolicy } from '../core/idle-release';
import { Logger } from '../core/log';
import { Sql } from '../store/sql';
import { handleUnexpectedErrors } from '../http/errors';
import { createAdminApp } from './admin-app';
import { createFormApp } from './form-app';
import { LinePolicy } from '../store/waiting-line';
import { securityHeaders } from './security-headers';
import { createAssetApp } from './static-assets';

export interface WebAppOptions {
  sql: Sql;
  log: Logger;
  adminSecret: () => Promise<string>;
  accessCode?: string;
  requestLimiter?: MiddlewareHandler;
  expiresAt?: string;
  addressLimit?: AddressLimit;
  clientAddress?: (c: Context) => string | undefined;
  /** The waiting line's turn; DEFAULT_LINE_POLICY when unset. */
  line?: LinePolicy;
  /** What the participant's page and the dashboard say about VMs held by nobody; nothing when unset. */
  idleRelease?: IdleReleasePolicy;
  /** Prices the after-workshop report. */
  pricing?: Pricing;
}

/** Everything people use in a browser: the participant form and the admin dashboard. */
export function createWebApp(options: WebAppOptions): Hono {
  const app = new Hono();
  app.use('*', securityHeaders());
  app.route('/', createAssetApp());
  app.route('/', createFormApp(options));
  app.route('/', createAdminApp(options));
  return app;
}

/** The web app with its own error handler, as a Lambda or a server serves it. */
export function createServedWebApp(options: WebAppOptions): Hono {
  return handleUnexpectedErrors(createWebApp(options), options.log);
}
