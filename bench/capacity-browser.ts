import http from 'node:http';

export interface Answer {
  status: number;
  /** The redirect's target, path and query only. */
  location?: string;
  retryAfterSeconds?: number;
  body: string;
}

/**
 * One participant's browser, as the server sees it: its own cookies (the retry token), and its
 * own client address. Linux answers on all of 127.0.0.0/8, so binding the socket to, say,
 * 127.0.1.3 gives the server a distinct real address without any header a client could forge.
 * Redirects are not followed: the benchmark reads where the form sends the participant.
 */
export class Browser {
  private readonly cookies = new Map<string, string>();

  constructor(
    private readonly url: URL,
    private readonly localAddress: string,
  ) {}

  get(path: string, signal: AbortSignal): Promise<Answer> {
    return this.request('GET', path, undefined, signal);
  }

  /** A form post, urlencoded as a browser sends it. */
  post(path: string, fields: Record<string, string>, signal: AbortSignal): Promise<Answer> {
    return this.request('POST', path, new URLSearchParams(fields).toString(), signal);
  }

  private request(method: string, path: string, body: string | undefined, signal: AbortSignal): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    return new Promise((resolve, reject) => {
      const request = http.request(
        { host: this.url.hostname, port: this.url.port, path, method, headers, localAddress: this.localAddress, signal },
        (response) => {
          this.keepCookies(response.headers['set-cookie'] ?? []);
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            const retryAfter = response.headers['retry-after'];
            const location = response.headers.location === undefined ? undefined : new URL(response.headers.location, this.url);
            resolve({
              status: response.statusCode ?? 0,
              location: location && location.pathname + location.search,
              retryAfterSeconds: retryAfter === undefined ? undefined : Number(retryAfter),
              body: Buffer.concat(chunks).toString('utf8'),
            });
          });
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  private keepCookies(setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair, ...attributes] = line.split(';');
      const name = pair.slice(0, pair.indexOf('=')).trim();
      const expired = attributes.some((attribute) => /^\s*max-age=0\s*$/i.test(attribute));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(pair.indexOf('=') + 1).trim());
    }
  }
}
