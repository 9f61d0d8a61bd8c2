/** Starts our services as child processes for a benchmark, on a fresh database and queue prefix. */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDatabase, pg, runMigrations } from '@cms/db';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The config's cms.nodes for the simulated bridges, each with the same write ceiling. */
export function benchCmsNodes(
  bridges: readonly { name: string; url: string; username: string; password: string }[],
  maxWritesPerSecond: number,
): { name: string; url: string; username: string; password: string; maxWritesPerSecond: number }[] {
  return bridges.map((b) => ({ name: b.name, url: b.url, username: b.username, password: b.password, maxWritesPerSecond }));
}

/** Ports of the services a benchmark starts (each only where that service runs). */
export interface ServicePorts {
  ingest?: number;
  ingestMetrics?: number;
  worker?: number;
  actuator?: number;
  api?: number;
  apiMetrics?: number;
}

/**
 * The environment our services run with in a benchmark: `settings` (CONFIG_FILE, DATABASE_URL, REDIS_URL,
 * QUEUE_PREFIX, tokens...), every service listening on 127.0.0.1 at `ports`, warnings and errors only in the logs.
 */
export function benchServiceEnv<Settings extends Record<string, string>>(
  settings: Settings,
  ports: ServicePorts = {},
): Settings & Record<string, string> {
  const env: Record<string, string> = {
    INGEST_HOST: '127.0.0.1',
    POLICY_WORKER_HOST: '127.0.0.1',
    ACTUATOR_HOST: '127.0.0.1',
    API_HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  };
  const names: [keyof ServicePorts, string][] = [
    ['ingest', 'INGEST_PORT'],
    ['ingestMetrics', 'INGEST_METRICS_PORT'],
    ['worker', 'POLICY_WORKER_PORT'],
    ['actuator', 'ACTUATOR_PORT'],
    ['api', 'API_PORT'],
    ['apiMetrics', 'API_METRICS_PORT'],
  ];
  for (const [key, name] of names) if (ports[key] !== undefined) env[name] = String(ports[key]);
  return { ...env, ...settings };
}

export async function freshDatabase(baseUrl: string, prefix: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const url = new URL(baseUrl);
  url.pathname = `/${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  await ensureDatabase(url.toString());
  await runMigrations(url.toString());
  return {
    url: url.toString(),
    async drop() {
      const admin = new URL(baseUrl);
      admin.pathname = '/postgres';
      const client = new pg.Client({ connectionString: admin.toString() });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(url.pathname.slice(1))} WITH (FORCE)`);
      await client.end();
    },
  };
}

export interface Child {
  name: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;

/** The last lines of a service's log, for an error that says why it did not start. */
function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * `stdoutFile`: where the service's stdout (its JSON log) goes; by default a temporary file, so that a service that
 * fails to start can say why (the tail of its log is in the error).
 */
export async function startService(
  name: string,
  env: Record<string, string>,
  readyUrl: string,
  options: { stdoutFile?: string } = {},
): Promise<Child> {
  const logFile = options.stdoutFile ?? join(mkdtempSync(join(tmpdir(), `bench-${name}-`)), 'stdout.log');
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [`services/${name}/src/main.ts`], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', out, 'inherit'],
  });
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  // Generous: on a machine shared with other work, start-up (module loading, migrations) can take many seconds.
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited during start-up; its log (${logFile}) ends:\n${logTail(logFile)}`);
    try {
      if ((await fetch(readyUrl)).ok) break;
    } catch {}
    if (Date.now() > deadline) {
      // Not left running: an orphan would keep serving (and holding its port and the caller's stderr) after we exit.
      child.kill('SIGKILL');
      await exited;
      throw new Error(`${name} not ready within ${START_TIMEOUT_MS / 1000} s; its log (${logFile}) ends:\n${logTail(logFile)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name,
    process: child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
