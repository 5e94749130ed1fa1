import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { buildAgentBundle } from '../../agent/bundle';
import { SimulatedVm } from '../../local/simulated-fleet';
import { TEST_FLEET_TOKEN, crdCommand, waitFor } from '../support/fixtures';

interface Answer {
  status: number;
  body?: unknown;
  /** Held this long first, as the allocator holds a poll. */
  holdMs?: number;
}

interface SeenRequest {
  path: string;
  body: Record<string, unknown>;
  receivedAt: number;
}

/** A real HTTP server on 127.0.0.1 that answers each path as the test scripts it and records what the agent sent. */
async function startScriptedAllocator(
  script: Record<string, (count: number) => Answer>,
): Promise<{ url: string; seen: SeenRequest[]; close(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const path = request.url ?? '';
      seen.push({
        path,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>,
        receivedAt: Date.now(),
      });
      const answer = script[path]?.(seen.filter((request) => request.path === path).length) ?? { status: 204 };
      const timer = setTimeout(() => {
        if (answer.body === undefined) response.writeHead(answer.status).end();
        else response.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
      }, answer.holdMs ?? 0);
      response.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const NOTHING_YET: Answer = { status: 204, holdMs: 200 };

describe('the agent process against a scripted allocator on 127.0.0.1', () => {
  let bundleDir: string;
  let agentBundle: string;
  let vm: SimulatedVm | undefined;
  let allocator: Awaited<ReturnType<typeof startScriptedAllocator>> | undefined;
  let output: string[];

  async function startAgent(script: Record<string, (count: number) => Answer>): Promise<void> {
    allocator = await startScriptedAllocator(script);
    output = [];
    vm = await SimulatedVm.create({
      name: 'scripted-vm',
      allocatorUrl: allocator.url,
      fleetToken: TEST_FLEET_TOKEN,
      agentBundle,
      onOutput: (_name, line) => output.push(line),
    });
    vm.start();
  }

  const requests = (path: string) => allocator!.seen.filter((request) => request.path === path);

  beforeAll(async () => {
    bundleDir = await mkdtemp(path.join(os.tmpdir(), 'lablink-agent-protocol-'));
    agentBundle = path.join(bundleDir, 'agent.js');
    await writeFile(agentBundle, buildAgentBundle());
  });
  afterAll(async () => rm(bundleDir, { recursive: true, force: true }));
  afterEach(async () => {
    await vm?.dispose();
    await allocator?.close();
    vm = undefined;
    allocator = undefined;
  });

  it('stops reporting an outcome the allocator refuses with a 4xx, and goes back to polling', async () => {
    const assignment = randomUUID();
    await startAgent({
      '/vm_startup': (count) =>
        count === 1 ? { status: 200, body: { status: 'success', pin: '123456', command: crdCommand(), assignment } } : NOTHING_YET,
      '/vm_status': () => ({ status: 409, body: { error: 'That assignment is no longer this VM’s.' } }),
    });
    await waitFor(() => requests('/vm_startup').length >= 2, 'the agent to poll again after the refused report', 15_000);
    expect(requests('/vm_status').map((request) => request.body)).toEqual([{ hostname: 'scripted-vm', assignment, outcome: 'configured' }]);
    const statusIndex = allocator!.seen.findIndex((request) => request.path === '/vm_status');
    const lastPollIndex = allocator!.seen.findLastIndex((request) => request.path === '/vm_startup');
    expect(lastPollIndex).toBeGreaterThan(statusIndex);
    expect(output.join('\n')).toMatch(/agent\.report_refused status=409/);
  });

  it('backs off on a 200 it cannot use as an assignment instead of polling in a busy loop, and takes the real one when it comes', async () => {
    const assignment = randomUUID();
    await startAgent({
      '/vm_startup': (count) => {
        if (count <= 3) return { status: 200, body: { status: 'success', note: 'an allocator that lost its mind' } };
        if (count === 4) return { status: 200, body: { status: 'success', pin: '654321', command: crdCommand(), assignment } };
        return NOTHING_YET;
      },
    });
    await waitFor(() => requests('/vm_status').length === 1, 'the agent to configure the real assignment', 30_000);
    expect(requests('/vm_status')[0].body).toEqual({ hostname: 'scripted-vm', assignment, outcome: 'configured' });
    const polls = requests('/vm_startup');
    // The backoff after the 1st and the 2nd unusable answer waits at least 0.5 s and 1 s (half of it is fixed).
    expect(polls[2].receivedAt - polls[0].receivedAt).toBeGreaterThanOrEqual(1_500);
    const warnings = output.filter((line) => line.includes('agent.bad_assignment'));
    expect(warnings.map((line) => /attempt=(\d+)/.exec(line)?.[1])).toEqual(['1', '2', '3']);
  });
});
