import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { requestVm } from '../store/assignment';
import { countFreeVms } from '../store/vms';
import { generateSecret } from '../core/secrets';
import { PgSql, createPgPool } from '../store/pg-sql';
import { crdCommandFor } from './commands';
import { startLocalPostgres } from '../local/postgres';
import { runMain } from '../local/run-main';
import { summarize } from './stats';
import { DEFAULT_WARM_POOL_SCENARIO, simulateWarmPool } from './warm-pool-scenario';
import { simulateOpenPages } from './open-pages';
import { apiThrottle } from '../lib/api-throttle';
import { endToEnd } from './end-to-end';
import { CapacityScenario, DEFAULT_CAPACITY_SCENARIO, capacity } from './capacity';
import type { BenchStackPolicies } from './server';
import type { ServerTrace } from './server-trace';

const USAGE = `Usage: npm run bench -- [options]

Drives the real local allocator and form handlers (a child process, on 127.0.0.1) with a
real PostgreSQL, using many simulated VMs in this process (real HTTP long-polls; the
end-to-end scenario holds them in a child process of their own). Prints one JSON line per
scenario, then a table.

  --scenarios <list>   fanout,burst,steady,bundle,warmpool,openpages,endtoend,capacity (default: all)
  --sizes <list>       held VMs for fan-out (default 1000,5000,10000)
  --assignments <n>    assignments in the fan-out burst (default 500)
  --burst <n>          concurrent form submissions in the burst scenario (default 500)
  --steady-vms <n>     VMs re-polling in the steady scenario (default 1000)
  --steady-seconds <s> how long the steady scenario runs (default 60)
  --hold-seconds <s>   the allocator's hold in the steady scenario (default 40, the default hold)
  --pages <list>       participants with open pages, each with a fleet of that size (default 300,1000)
  --e2e-sizes <list>   held VMs for end-to-end (form post → VM answered) (default 2000,5000)
  --e2e-samples <n>    sequential submissions per size (default 400), then 3 after a quiet spell
  --quiet-seconds <s>  each quiet spell (default 15)
  --minute-ms <ms>     capacity: real milliseconds per workshop minute (default 1000); the policies scale with it
  --smoke              small sizes, for CI: fan-out 200, burst 100, steady 100 VMs for 5 s, 300 open pages,
                       end-to-end 100 VMs, 30 samples, one 1 s quiet spell; capacity: 30 participants over
                       2 min for 20 VMs, every third leaving after 10 min, 10 fake requests, 25 min at 0.5 s a minute
  --help               this text`;

const ROOT = path.join(__dirname, '..');
const FLEET_TOKEN = generateSecret();

interface Server {
  url: string;
  pid: number;
  /** What the server recorded since the last call; only when started with `trace`. */
  trace(): Promise<ServerTrace>;
  stop(): Promise<void>;
}

/** Bundles bench/server.ts with esbuild, as production would run, and starts it. */
async function startServer(
  bundle: string,
  databaseUrl: string,
  holdSeconds: number,
  options: { policies?: BenchStackPolicies; trace?: boolean } = {},
): Promise<Server> {
  const args = [bundle, databaseUrl, String(holdSeconds), FLEET_TOKEN, ...(options.policies ? [JSON.stringify(options.policies)] : [])];
  const env = options.trace ? { ...process.env, LABLINK_BENCH_TRACE: '1' } : process.env;
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'], env });
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const nextLine = async () => JSON.parse((await lines.next()).value as string) as unknown;
  const { url } = (await nextLine()) as { url: string };
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    url,
    pid: child.pid!,
    async trace() {
      child.stdin!.write('trace\n');
      return (await nextLine()) as ServerTrace;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** User plus system CPU time of a process so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

async function heldPolls(url: string): Promise<number> {
  return ((await (await fetch(`${url}/api/health`)).json()) as { heldPolls: number }).heldPolls;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function poll(url: string, hostname: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}/vm_startup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${FLEET_TOKEN}` },
    body: JSON.stringify({ hostname }),
    signal,
  });
}

type Report = Record<string, unknown> & { scenario: string };

async function fanOut(databaseUrl: string, pool: PgSql, bundle: string, size: number, assignments: number, runId: string): Promise<Report> {
  const server = await startServer(bundle, databaseUrl, 300);
  try {
    // VMs of earlier runs are not polling any more: only this run's VMs may be picked.
    await pool.query(`UPDATE vms SET alive_until = now() WHERE state = 'waiting'`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rssBefore = await rssKb(server.pid);
    const responses = new Map<string, number>();
    let errors = 0;
    const names = Array.from({ length: size }, (_, index) => `${runId}-vm-${index + 1}`);
    const controller = new AbortController();
    const registrationStarted = performance.now();
    const polls = names.map(async (name) => {
      try {
        const response = await poll(server.url, name, controller.signal);
        responses.set(name, performance.now());
        if (response.status !== 200) errors += 1;
        await response.arrayBuffer();
      } catch {
        if (!controller.signal.aborted) errors += 1;
      }
    });
    await until(async () => (await heldPolls(server.url)) === size, `${size} held polls`, 120_000);
    await until(async () => (await countFreeVms(pool)) === size, `${size} free VMs`, 120_000);
    const allFreeSeconds = (performance.now() - registrationStarted) / 1000;
    const rssHeld = await rssKb(server.pid);
    const [{ connections }] = await pool.query<{ connections: number }>(
      `SELECT count(*)::int AS connections FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'lablink-allocator%'`,
    );

    const commits = new Map<string, number>();
    await Promise.all(
      Array.from({ length: assignments }, async (_, index) => {
        const result = await requestVm(pool, { email: `${runId}-p${index}@example.com`, crdCommand: crdCommandFor(index) });
        if (result.kind === 'assigned') commits.set(result.hostname, performance.now());
        else errors += 1;
      }),
    );
    await until(async () => [...commits.keys()].every((name) => responses.has(name)), 'every assigned VM to be answered', 60_000).catch(
      async (error: Error) => {
        const missing = [...commits.keys()].filter((name) => !responses.has(name));
        const states = await pool.query<{ state: string; count: number }>(
          `SELECT state, count(*)::int AS count FROM vms WHERE hostname = ANY(CAST(:names AS text[])) GROUP BY state`,
          { names: missing },
        );
        throw new Error(
          `${error.message}: ${missing.length} unanswered, states ${JSON.stringify(states)}, held ${await heldPolls(server.url)}`,
        );
      },
    );
    const latencies = [...commits].map(([name, committed]) => Math.max(0, responses.get(name)! - committed));
    controller.abort();
    await Promise.allSettled(polls);
    return {
      scenario: 'fanout',
      heldVms: size,
      allFreeSeconds: Math.round(allFreeSeconds * 10) / 10,
      assignments,
      deliveryLatencyMs: summarize(latencies),
      allocatorDbConnections: connections,
      allocatorRssMbBefore: Math.round(rssBefore / 102.4) / 10,
      allocatorRssMbHeld: Math.round(rssHeld / 102.4) / 10,
      rssKbPerHeldVm: Math.round(((rssHeld - rssBefore) / size) * 10) / 10,
      errors,
    };
  } finally {
    await server.stop();
  }
}

async function burst(
  databaseUrl: string,
  pool: PgSql,
  bundle: string,
  submissions: number,
  freeVms: number,
  runId: string,
): Promise<Report> {
  const server = await startServer(bundle, databaseUrl, 30);
  try {
    await pool.query(`UPDATE vms SET alive_until = now() WHERE state = 'waiting'`);
    for (let index = 1; index <= freeVms; index += 1) {
      await pool.query(`INSERT INTO vms (hostname, alive_until) VALUES (:hostname, now() + interval '1 hour')`, {
        hostname: `${runId}-free-${index}`,
      });
    }
    const latencies: number[] = [];
    const hostnames: string[] = [];
    let refused = 0;
    let errors = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: submissions }, async (_, index) => {
        const begin = performance.now();
        try {
          const response = await fetch(`${server.url}/api/request_vm`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'application/json' },
            body: JSON.stringify({ email: `${runId}-b${index}@example.com`, crd_command: crdCommandFor(index) }),
          });
          const body = (await response.json()) as { hostname?: string };
          latencies.push(performance.now() - begin);
          if (response.status === 200 && body.hostname) hostnames.push(body.hostname);
          else if (response.status === 503) refused += 1;
          else errors += 1;
        } catch {
          errors += 1;
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const [{ doubled }] = await pool.query<{ doubled: number }>(
      `SELECT count(*)::int AS doubled FROM (SELECT email FROM vms WHERE email LIKE :prefix GROUP BY email HAVING count(*) > 1) AS d`,
      { prefix: `${runId}-b%` },
    );
    return {
      scenario: 'burst',
      submissions,
      freeVms,
      assigned: hostnames.length,
      doubleBookings: hostnames.length - new Set(hostnames).size + doubled,
      refused,
      answered: latencies.length,
      errors,
      throughputPerSecond: Math.round(submissions / seconds),
      latencyMs: summarize(latencies),
    };
  } finally {
    await server.stop();
  }
}

async function steady(
  databaseUrl: string,
  bundle: string,
  vms: number,
  seconds: number,
  holdSeconds: number,
  runId: string,
): Promise<Report> {
  const server = await startServer(bundle, databaseUrl, holdSeconds);
  try {
    let served = 0;
    let errors = 0;
    const stopAt = Date.now() + seconds * 1000;
    const controller = new AbortController();
    const stopper = setTimeout(() => controller.abort(), seconds * 1000);
    const cpuBefore = await cpuSeconds(server.pid);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: vms }, async (_, index) => {
        while (Date.now() < stopAt) {
          try {
            const response = await poll(server.url, `${runId}-steady-${index}`, controller.signal);
            await response.arrayBuffer();
            if (response.status === 204) served += 1;
            else errors += 1;
          } catch {
            if (!controller.signal.aborted) errors += 1;
          }
        }
      }),
    );
    clearTimeout(stopper);
    const wall = (performance.now() - started) / 1000;
    const cpu = (await cpuSeconds(server.pid)) - cpuBefore;
    return {
      scenario: 'steady',
      vms,
      seconds,
      holdSeconds,
      requestsServed: served,
      requestsPerSecond: Math.round((served / wall) * 10) / 10,
      allocatorCpuPercentOfOneCore: Math.round((cpu / wall) * 1000) / 10,
      errors,
    };
  } finally {
    await server.stop();
  }
}

/** The form Lambda as CDK bundles it (minified, AWS SDK external), its size and its module load time. */
async function lambdaBundle(dir: string): Promise<Report> {
  const outfile = path.join(dir, 'form-handler.js');
  await build({
    entryPoints: [path.join(ROOT, 'web', 'form-handler.ts')],
    outfile,
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['@aws-sdk/*'],
    logLevel: 'silent',
  });
  const loadScript = `const t=performance.now();require(${JSON.stringify(outfile)});process.stdout.write(String(performance.now()-t));`;
  const env = {
    ...process.env,
    NODE_PATH: path.join(ROOT, 'node_modules'),
    AWS_REGION: 'eu-west-1',
    LABLINK_DB_CLUSTER_ARN: 'arn:aws:rds:eu-west-1:1:cluster:x',
    LABLINK_DB_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:x',
    LABLINK_DB_NAME: 'lablink',
    LABLINK_ADMIN_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:y',
  };
  const loads = Array.from({ length: 5 }, () =>
    Number(execFileSync(process.execPath, ['-e', loadScript], { env, cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })),
  );
  return { scenario: 'bundle', bundleKb: Math.round((await stat(outfile)).size / 102.4) / 10, moduleLoadMs: summarize(loads) };
}

function table(reports: Report[]): string {
  const lines = ['scenario  | result', '----------|-------'];
  for (const report of reports) {
    const { scenario, ...rest } = report;
    // The end-to-end tail's explanation stays in the JSON line above: the table keeps to the numbers.
    const numbers = Object.fromEntries(Object.entries(rest).filter(([key]) => key !== 'tail'));
    lines.push(`${scenario.padEnd(9)} | ${JSON.stringify(numbers)}`);
  }
  return lines.join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      scenarios: { type: 'string', default: 'fanout,burst,steady,bundle,warmpool,openpages,endtoend,capacity' },
      sizes: { type: 'string', default: '1000,5000,10000' },
      assignments: { type: 'string', default: '500' },
      burst: { type: 'string', default: '500' },
      'steady-vms': { type: 'string', default: '1000' },
      'steady-seconds': { type: 'string', default: '60' },
      'hold-seconds': { type: 'string', default: '40' },
      pages: { type: 'string', default: '300,1000' },
      'e2e-sizes': { type: 'string', default: '2000,5000' },
      'e2e-samples': { type: 'string', default: '400' },
      'quiet-seconds': { type: 'string', default: '15' },
      'minute-ms': { type: 'string', default: String(DEFAULT_CAPACITY_SCENARIO.minuteMs) },
      smoke: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const scenarios = new Set(values.scenarios.split(','));
  const smoke = values.smoke;
  const sizes = smoke ? [200] : values.sizes.split(',').map(Number);
  const assignments = smoke ? 50 : Number(values.assignments);
  const burstSize = smoke ? 100 : Number(values.burst);
  const steadyVms = smoke ? 100 : Number(values['steady-vms']);
  const steadySeconds = smoke ? 5 : Number(values['steady-seconds']);
  const holdSeconds = smoke ? 2 : Number(values['hold-seconds']);
  const pageCounts = smoke ? [300] : values.pages.split(',').map(Number);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'lablink-bench-'));
  const serverBundle = path.join(dir, 'server.js');
  await build({
    entryPoints: [path.join(__dirname, 'server.ts')],
    outfile: serverBundle,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['pg-native'],
    logLevel: 'silent',
  });
  await writeFile(path.join(dir, 'package.json'), '{}');
  const postgres = await startLocalPostgres();
  const pgPool = createPgPool({ connectionString: postgres.url, application_name: 'bench' }, 10);
  const pool = new PgSql(pgPool);
  const reports: Report[] = [];
  const emit = (report: Report) => {
    reports.push(report);
    console.log(JSON.stringify(report));
  };
  try {
    const { migrate } = await import('../store/migrations');
    await migrate(pool);
    let run = 0;
    if (scenarios.has('fanout'))
      for (const size of sizes) emit(await fanOut(postgres.url, pool, serverBundle, size, Math.min(assignments, size), `f${(run += 1)}`));
    if (scenarios.has('burst')) {
      emit(await burst(postgres.url, pool, serverBundle, burstSize, burstSize, `b${(run += 1)}`));
      emit(await burst(postgres.url, pool, serverBundle, burstSize, Math.floor(burstSize / 2), `b${(run += 1)}`));
    }
    if (scenarios.has('steady')) emit(await steady(postgres.url, serverBundle, steadyVms, steadySeconds, holdSeconds, `s${(run += 1)}`));
    if (scenarios.has('bundle')) emit(await lambdaBundle(dir));
    if (scenarios.has('endtoend')) {
      for (const heldVms of smoke ? [100] : values['e2e-sizes'].split(',').map(Number)) {
        const e2e = smoke
          ? { samples: 30, quietSpells: 1, quietSeconds: 1 }
          : { samples: Number(values['e2e-samples']), quietSpells: 3, quietSeconds: Number(values['quiet-seconds']) };
        emit(
          await endToEnd({
            startServer: (hold) => startServer(serverBundle, postgres.url, hold, { trace: true }),
            sql: pool,
            fleetToken: FLEET_TOKEN,
            heldVms,
            ...e2e,
            runId: `e${(run += 1)}`,
          }),
        );
      }
    }
    if (scenarios.has('capacity')) {
      const scenario: CapacityScenario = smoke
        ? {
            ...DEFAULT_CAPACITY_SCENARIO,
            participants: 30,
            vms: 20,
            arrivalMinutes: 2,
            leaveAfterMinutes: 10,
            fakesPerAddress: 2,
            workshopMinutes: 25,
            minuteMs: 500,
          }
        : { ...DEFAULT_CAPACITY_SCENARIO, minuteMs: Number(values['minute-ms']) };
      emit(
        await capacity({
          startServer: (hold, policies) => startServer(serverBundle, postgres.url, hold, { policies }),
          sql: pool,
          fleetToken: FLEET_TOKEN,
          scenario,
          runId: `c${(run += 1)}`,
        }),
      );
    }
    if (scenarios.has('warmpool')) {
      for (const preBooted of [true, false]) {
        for (const warmVms of [20, 10, 40]) emit(simulateWarmPool({ ...DEFAULT_WARM_POOL_SCENARIO, warmVms, preBooted }));
        emit(simulateWarmPool({ ...DEFAULT_WARM_POOL_SCENARIO, participants: 200, preBooted }));
      }
    }
    if (scenarios.has('openpages')) {
      // The stage as sized for the fleet, then as an apiRateLimit of 50 (the former fixed default) would leave it.
      for (const participants of pageCounts) {
        for (const throttle of [apiThrottle(participants), apiThrottle(participants, 50)])
          emit(await simulateOpenPages({ participants, throttle, seconds: 600, failedShare: 0.1, seed: 1 }));
      }
    }
  } finally {
    await pgPool.end();
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`\n${table(reports)}`);
  return 0;
}

runMain(main);
