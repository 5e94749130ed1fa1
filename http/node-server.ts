import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Serves `app`. `keepAliveSeconds` must outlast the load balancer's idle timeout, or the
 * balancer may reuse a connection Node has just closed (a 502 for that request).
 */
export async function listen(
  app: Hono,
  options: { hostname: string; port: number; keepAliveSeconds?: number },
): Promise<{ server: Server; port: number }> {
  const server = await new Promise<Server>((resolve, reject) => {
    const started = serve({ fetch: app.fetch, hostname: options.hostname, port: options.port }, () => resolve(started as Server)) as Server;
    started.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? new Error(`port ${options.port} is already in use; choose another with --port`) : error);
    });
  });
  if (options.keepAliveSeconds) {
    server.keepAliveTimeout = options.keepAliveSeconds * 1000;
    server.headersTimeout = (options.keepAliveSeconds + 1) * 1000;
  }
  return { server, port: (server.address() as AddressInfo).port };
}

/** Stops accepting, then drops idle and still-open connections (holds were answered first). */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
