import { ADMIN_USER } from '../web/admin-app';

/** What the check asks of a running LabLink over HTTP: the public form routes, and the admin routes with the secret. */
export class LabLinkClient {
  readonly base: URL;

  constructor(
    baseUrl: string,
    private readonly adminSecret: string | undefined,
  ) {
    this.base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  }

  url(path: string): string {
    return new URL(path.replace(/^\//, ''), this.base).toString();
  }

  get hasAdminSecret(): boolean {
    return this.adminSecret !== undefined;
  }

  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(this.url(path), { ...init, redirect: 'manual', signal: AbortSignal.timeout(30_000) });
  }

  admin(path: string, init: RequestInit = {}): Promise<Response> {
    const authorization = `Basic ${Buffer.from(`${ADMIN_USER}:${this.adminSecret ?? ''}`).toString('base64')}`;
    return this.fetch(path, { ...init, headers: { ...init.headers, authorization } });
  }

  /** An admin route's JSON; throws with the status and the answer's error when it is not 2xx. */
  async adminJson<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await this.admin(path, init.body ? { ...init, headers: { 'content-type': 'application/json' } } : init);
    const body = (await response.json().catch(() => ({}))) as T & { error?: string };
    if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${path} answered ${response.status}${body.error ? `: ${body.error}` : ''}`);
    return body;
  }
}
