import { Pricing } from '../core/cost';
import { getConnInfo } from '@hono/node-server/conninfo';
import { Hono } from 'hono';
import { AllocatorService, createAllocatorService } from '../allocator/service';
import { FleetTokenVerifier, VmIdentityVerifier } from '../allocator/identity';
import { createAllocatorPool } from '../allocator/pool';
import { DEFAULT_HOLD_SECONDS } from '../contract/timeouts';
import { DEFAULT_REPAIR_POLICY, RepairPolicy } from '../store/health';
import { AppRole, ensureAppRole, urlAs } from '../store/app-role';
import { Logger } from '../core/log';
import { ASSIGNMENT_WARM_UP } from '../store/assignment';
import { DELIVERY_WARM_UP } from '../store/vms';
import { migrate } from '../store/migrations';
import { PgSql, createPgPool } from '../store/pg-sql';
import { handleUnexpectedErrors } from '../http/errors';
import { closeServer, listen } from '../http/node-server';
import { RateLimitOptions, rateLimit } from '../http/rate-limit';
import { createServedWebApp } from '../web/web-app';
import { AddressLimit, DEFAULT_ADDRESS_LIMIT } from '../store/client-limits';
import { DEFAULT_IDLE_RELEASE, IdleReleasePolicy } from '../core/idle-release';
import { LinePolicy } from '../store/waiting-line';

export interface LocalStackOptions {
  /** The database as its owner: only the migrations and the app role's grants run with it. */
  databaseUrl: string;
  /** The least-privilege role the allocator, its LISTEN connection and the web app connect as; created or updated at start. */
  appRole: AppRole;
  fleetToken: string;
  /** How VMs prove who they are; the fleet token unless given. */
  identity?: VmIdentityVerifier;
  adminSecret: string;
  /** Participants must give this code to get a VM. */
  accessCode?: string;
  /** Shown on the dashboard as the time the fleet stops. */
  expiresAt?: string;
  /** Limits on requests for a VM; none when unset. */
  requestLimits?: Omit<RateLimitOptions, 'clientKey'>;
  /** New VMs per client address and window: DEFAULT_ADDRESS_LIMIT unless given; null for none. */
  addressLimit?: AddressLimit | null;
  /** VMs held by nobody go back to the pool: DEFAULT_IDLE_RELEASE unless given; null for never. */
  idleRelease?: IdleReleasePolicy | null;
  /** Prices the after-workshop report; the deploy's default instance type when unset. */
  pricing?: Pricing;
  /** The waiting line's turn: DEFAULT_LINE_POLICY unless given. */
  line?: LinePolicy;
  port?: number;
  /** Health checks: local VMs cannot be rebooted, so an unhealthy one is marked failed after `repairAfterSeconds`. */
  repairPolicy?: RepairPolicy;
  doctorIntervalMs?: number;
  idleSweepIntervalMs?: number;
  /** A delivery to a VM that never reports (LabLink's own client) counts as configured after this long. */
  unreportedDeliveryFinalSeconds?: number;
  holdSeconds?: number;
  aliveGraceSeconds?: number;
  log: Logger;
}

export interface LocalStack {
  url: string;
  port: number;
  allocator: AllocatorService;
  sql: PgSql;
  close(): Promise<void>;
}

/** A whole classroom may share one address behind NAT: generous per client, firm overall. */
export const DEFAULT_REQUEST_LIMITS = { perClient: { perSecond: 2, burst: 30 }, global: { perSecond: 50, burst: 100 } };
export const DEFAULT_ALIVE_GRACE_SECONDS = 20;

/** Migrates as the owner, then creates or updates the app role, as the custom resource does in AWS. */
async function prepareDatabase(ownerUrl: string, appRole: AppRole): Promise<void> {
  const owner = createPgPool({ connectionString: ownerUrl, application_name: 'lablink-migrate' }, 1);
  try {
    const sql = new PgSql(owner);
    await migrate(sql);
    await ensureAppRole(sql, appRole);
  } finally {
    await owner.end();
  }
}

/**
 * How long an idle client's connection stays open (Node's default is 5 s): a VM page that asks
 * every 30 s, or a form posted a while after its page loaded, reuses its connection instead of
 * opening a new one first.
 */
export const LOCAL_KEEP_ALIVE_SECONDS = 65;

/**
 * The allocator and the form handlers on one port, over one database: the same
 * apps that run on Fargate and Lambda, with the `pg` executor for both, connected as the app role.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  await prepareDatabase(options.databaseUrl, options.appRole);
  const appUrl = urlAs(options.databaseUrl, options.appRole);
  // One kept: one participant after another needs one, and with the allocator's 10 + LISTEN no more
  // are open after a quiet spell than a busy moment had before (12); more open for a burst and close when idle.
  const pool = createPgPool({ connectionString: appUrl, application_name: 'lablink-web' }, { max: 10, keep: 1 });
  const sql = new PgSql(pool);
  const allocatorPool = createAllocatorPool({ connectionString: appUrl }, 10);
  const allocatorSql = new PgSql(allocatorPool);
  await Promise.all([sql.warm(ASSIGNMENT_WARM_UP), allocatorSql.warm(DELIVERY_WARM_UP)]);
  const idleRelease = options.idleRelease === undefined ? DEFAULT_IDLE_RELEASE : (options.idleRelease ?? undefined);
  const allocator = createAllocatorService({
    sql: allocatorSql,
    listenConnection: { connectionString: appUrl },
    identity: options.identity ?? new FleetTokenVerifier(options.fleetToken),
    holdSeconds: options.holdSeconds ?? DEFAULT_HOLD_SECONDS,
    aliveGraceSeconds: options.aliveGraceSeconds ?? DEFAULT_ALIVE_GRACE_SECONDS,
    doctor: {
      policy: options.repairPolicy ?? DEFAULT_REPAIR_POLICY,
      intervalMs: options.doctorIntervalMs ?? 15_000,
      unreportedDeliveryFinalSeconds: options.unreportedDeliveryFinalSeconds,
    },
    idleRelease: idleRelease && { policy: idleRelease, intervalMs: options.idleSweepIntervalMs ?? 15_000 },
    log: options.log,
  });
  await allocator.start();

  const app = new Hono();
  app.route('/', allocator.app);
  app.route(
    '/',
    createServedWebApp({
      sql,
      log: options.log,
      adminSecret: async () => options.adminSecret,
      accessCode: options.accessCode,
      expiresAt: options.expiresAt,
      requestLimiter:
        options.requestLimits && rateLimit({ ...options.requestLimits, clientKey: (c) => getConnInfo(c).remote.address ?? 'unknown' }),
      addressLimit: options.addressLimit === undefined ? DEFAULT_ADDRESS_LIMIT : (options.addressLimit ?? undefined),
      clientAddress: (c) => getConnInfo(c).remote.address,
      idleRelease,
      pricing: options.pricing,
      line: options.line,
    }),
  );
  handleUnexpectedErrors(app, options.log);

  let listening;
  try {
    listening = await listen(app, { hostname: '127.0.0.1', port: options.port ?? 0, keepAliveSeconds: LOCAL_KEEP_ALIVE_SECONDS });
  } catch (error) {
    await allocator.stop();
    await Promise.all([pool.end(), allocatorPool.end()]);
    throw error;
  }
  const { server, port } = listening;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    allocator,
    sql,
    async close() {
      await allocator.stop();
      await closeServer(server);
      await Promise.all([pool.end(), allocatorPool.end()]);
    },
  };
}
