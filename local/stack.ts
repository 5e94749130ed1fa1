import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAllocatorService, AllocatorService } from '../allocator/service';
import { FleetTokenVerifier } from '../allocator/identity';
import { Logger } from '../core/log';
import { migrate } from '../core/migrations';
import { PgSql, createPgPool } from '../core/pg-sql';
import { createFormApp } from '../lambda/form-app';

export interface LocalStackOptions {
  databaseUrl: string;
  fleetToken: string;
  port?: number;
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

function listen(app: Hono, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, () => resolve(server as Server)) as Server;
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? new Error(`port ${port} is already in use; choose another with --port`) : error);
    });
  });
}

export const DEFAULT_HOLD_SECONDS = 40;
export const DEFAULT_ALIVE_GRACE_SECONDS = 20;

/**
 * The allocator and the form handlers on one port, over one database: the same
 * apps that run on Fargate and Lambda, with the `pg` executor for both.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const pool = createPgPool(options.databaseUrl);
  const sql = new PgSql(pool);
  await migrate(sql);
  const allocator = createAllocatorService({
    sql,
    listenConnectionString: options.databaseUrl,
    identity: new FleetTokenVerifier(options.fleetToken),
    holdSeconds: options.holdSeconds ?? DEFAULT_HOLD_SECONDS,
    aliveGraceSeconds: options.aliveGraceSeconds ?? DEFAULT_ALIVE_GRACE_SECONDS,
    log: options.log,
  });
  await allocator.start();

  const app = new Hono();
  app.route('/', allocator.app);
  app.route('/', createFormApp({ sql, log: options.log }));
  app.onError((error, c) => {
    options.log.error('http.unhandled', { path: c.req.path, reason: error.message });
    return c.json({ error: 'Internal error; the request was not completed.' }, 500);
  });

  let server: Server;
  try {
    server = await listen(app, options.port ?? 0);
  } catch (error) {
    await allocator.stop();
    await pool.end();
    throw error;
  }
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    allocator,
    sql,
    async close() {
      await allocator.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await pool.end();
    },
  };
}
