import { silentLogger } from '../../core/log';
import { LocalStack, LocalStackOptions, startLocalStack } from '../../local/stack';
import { TestDatabase, createTestDatabase } from './database';
import { TEST_ADMIN_SECRET, TEST_FLEET_TOKEN } from './fixtures';

export interface TestStack {
  db: TestDatabase;
  stack: LocalStack;
  url: string;
  close(): Promise<void>;
}

/** The real local stack (allocator + form handlers over HTTP on 127.0.0.1) on a fresh database. */
export async function startTestStack(
  options: Partial<
    Pick<
      LocalStackOptions,
      | 'holdSeconds'
      | 'aliveGraceSeconds'
      | 'identity'
      | 'accessCode'
      | 'requestLimits'
      | 'addressLimit'
      | 'idleRelease'
      | 'idleSweepIntervalMs'
      | 'log'
      | 'expiresAt'
      | 'repairPolicy'
      | 'port'
      | 'unreportedDeliveryFinalSeconds'
      | 'pricing'
    >
  > = {},
): Promise<TestStack> {
  const db = await createTestDatabase();
  const stack = await startLocalStack({
    databaseUrl: db.url,
    appRole: db.appRole,
    fleetToken: TEST_FLEET_TOKEN,
    adminSecret: TEST_ADMIN_SECRET,
    ...options,
    holdSeconds: options.holdSeconds ?? 30,
    aliveGraceSeconds: options.aliveGraceSeconds ?? 5,
    // The fleet doctor has its own tests; here it would change rows under before/after comparisons.
    doctorIntervalMs: 3_600_000,
    // Off unless a test asks: it would release VMs other tests age on purpose.
    idleRelease: options.idleRelease ?? null,
    log: options.log ?? silentLogger,
  });
  return {
    db,
    stack,
    url: stack.url,
    async close() {
      await stack.close();
      await db.drop();
    },
  };
}

/** A VM's long-poll as an agent would send it. */
export function pollAsVm(url: string, hostname: string, init: { token?: string; signal?: AbortSignal } = {}): Promise<Response> {
  return fetch(`${url}/vm_startup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${init.token ?? TEST_FLEET_TOKEN}` },
    body: JSON.stringify({ hostname }),
    signal: init.signal,
  });
}

/** A batch of log lines (and the step) as an agent would send it. */
export function sendLogsAsVm(url: string, batch: object): Promise<Response> {
  return fetch(`${url}/vm_logs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_FLEET_TOKEN}` },
    body: JSON.stringify(batch),
  });
}

export function submitForm(url: string, fields: Record<string, string>, accept = 'application/json'): Promise<Response> {
  return fetch(`${url}/api/request_vm`, { method: 'POST', headers: { accept }, body: new URLSearchParams(fields) });
}

/**
 * A browser's form post without JavaScript: the answer (a 303, Post/Redirect/Get), then the page
 * it leads to, fetched with the cookies the answer set, as a browser would.
 */
export async function submitFormAsBrowser(
  url: string,
  fields: Record<string, string>,
  cookie?: string,
): Promise<{ answer: Response; location: string; page: Response; cookies: string }> {
  const answer = await fetch(`${url}/api/request_vm`, {
    method: 'POST',
    headers: cookie ? { cookie } : {},
    body: new URLSearchParams(fields),
    redirect: 'manual',
  });
  const location = answer.headers.get('location') ?? '';
  const cookies = answer.headers
    .getSetCookie()
    .map((line) => line.split(';')[0])
    .join('; ');
  const page = await fetch(new URL(location, url), { headers: cookies ? { cookie: cookies } : {} });
  return { answer, location, page, cookies };
}

export async function freeCount(url: string): Promise<number> {
  const response = await fetch(`${url}/api/unassigned_vms_count`);
  return ((await response.json()) as { count: number }).count;
}
