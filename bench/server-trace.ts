// What the system under test did during the end-to-end scenario, seen from inside its process:
// its garbage-collection pauses and when its form posts and VM answers ran. Recorded by
// bench/server.ts from Node's HTTP diagnostics channel and by wrapping Node's `response.end`,
// so LabLink's code is not touched.
import { subscribe } from 'node:diagnostics_channel';
import { IncomingMessage, ServerResponse } from 'node:http';
import pg from 'pg';
import { Span, hrtimeMs, watchGcPauses } from './gc-pauses';

export interface ServerTrace {
  gcPauses: Span[];
  /** Each form post: its request's head parsed → its answer ended (written to the socket). */
  formPosts: Span[];
  /** When each "go" to a VM (a 200 to `/vm_startup`) was ended. */
  vmAnswersMs: number[];
  /** Each SQL statement: sent on a connection → its result back, and its first words. */
  queries: (Span & { statement: string })[];
}

const empty = (): ServerTrace => ({ gcPauses: [], formPosts: [], vmAnswersMs: [], queries: [] });

/** The first words of a statement, enough to recognise it. */
const firstWords = (config: unknown) =>
  String(typeof config === 'string' ? config : ((config as { text?: string } | null)?.text ?? ''))
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 60);

/** Records from now on; `take` returns what was recorded since the last `take`. */
export function recordServerTrace(): { take(): ServerTrace } {
  let gc = watchGcPauses();
  let trace = empty();
  const started = new WeakMap<IncomingMessage, number>();
  subscribe('http.server.request.start', (message) => started.set((message as { request: IncomingMessage }).request, hrtimeMs()));
  // Not the 'finish' event: it comes a turn of the event loop after the write, sometimes after the client has read the answer.
  const end = ServerResponse.prototype.end;
  ServerResponse.prototype.end = function (this: ServerResponse, ...args: unknown[]) {
    const at = hrtimeMs();
    if (this.req.url === '/api/request_vm') trace.formPosts.push({ fromMs: started.get(this.req) ?? at, toMs: at });
    else if (this.req.url === '/vm_startup' && this.statusCode === 200) trace.vmAnswersMs.push(at);
    return end.apply(this, args as Parameters<typeof end>);
  } as typeof end;
  // pg's pool calls `client.query(config, values, callback)`: the callback marks the result's arrival.
  const query = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const callback = args.findIndex((arg) => typeof arg === 'function');
    if (callback >= 0) {
      const fromMs = hrtimeMs();
      const statement = firstWords(args[0]);
      const done = args[callback] as (...results: unknown[]) => void;
      args[callback] = (...results: unknown[]) => {
        trace.queries.push({ statement, fromMs, toMs: hrtimeMs() });
        done(...results);
      };
    }
    return (query as (...args: unknown[]) => unknown).apply(this, args);
  } as typeof query;
  return {
    take() {
      const taken = { ...trace, gcPauses: gc.stop() };
      trace = empty();
      gc = watchGcPauses();
      return taken;
    },
  };
}
