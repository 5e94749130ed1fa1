import { Context } from 'hono';
import { AddressLimit, DEFAULT_ADDRESS_LIMIT } from '../store/client-limits';

/** API Gateway's view of the caller (HTTP API, payload 2.0): set by AWS, not by a header the client writes. */
export function lambdaSourceIp(c: Context): string | undefined {
  const event = (c.env as { event?: { requestContext?: { http?: { sourceIp?: unknown } } } } | undefined)?.event;
  const sourceIp = event?.requestContext?.http?.sourceIp;
  return typeof sourceIp === 'string' && sourceIp !== '' ? sourceIp : undefined;
}

function positiveWhole(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`${name} must be a whole number of at least 1, not "${raw}".`);
  return Number(raw);
}

/** The stack always sets both; the defaults keep a handler started by hand safe too. */
export function addressLimitFromEnv(env: NodeJS.ProcessEnv): AddressLimit {
  return {
    vms: positiveWhole(env.LABLINK_VMS_PER_ADDRESS, DEFAULT_ADDRESS_LIMIT.vms, 'LABLINK_VMS_PER_ADDRESS'),
    windowSeconds: positiveWhole(
      env.LABLINK_VMS_PER_ADDRESS_WINDOW_SECONDS,
      DEFAULT_ADDRESS_LIMIT.windowSeconds,
      'LABLINK_VMS_PER_ADDRESS_WINDOW_SECONDS',
    ),
  };
}
