/**
 * The real system as separate processes (node services/<name>/src/main.ts), for end-to-end tests that kill,
 * restart and signal them like an operator or an orchestrator would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { pg } from '@cms/db';
import { eventually, onTestFileEnd, testDatabase, testRedis } from './infra.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type ServiceName = 'cdr-ingest' | 'policy-worker' | 'cms-actuator' | 'records-api';

const PORT_ENV: Record<ServiceName, string> = {
  'cdr-ingest': 'INGEST_PORT',
  'policy-worker': 'POLICY_WORKER_PORT',
  'cms-actuator': 'ACTUATOR_PORT',
  'records-api': 'API_PORT',
};

/**
 * The services whose main port is published (to CMS, to users) serve /metrics on a port of their own; the others'
 * only port is their health and metrics port.
 */
const METRICS_PORT_ENV: Partial<Record<ServiceName, string>> = {
  'cdr-ingest': 'INGEST_METRICS_PORT',
  'records-api': 'API_METRICS_PORT',
};

/**
 * Whether process `pid` holds the listening TCP socket on `port` (Linux: /proc/net/tcp{,6} and the process's file
 * descriptors). Where there is no /proc, true: the check is only a guard against another process answering.
 */
function ownsPort(pid: number | undefined, port: number): boolean {
  if (pid === undefined) return false;
  if (!existsSync('/proc/net/tcp')) return true;
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      const local = fields[1]?.split(':')[1];
      if (local && Number.parseInt(local, 16) === port && fields[3] === '0A' && fields[9]) inodes.add(fields[9]);
    }
  }
  if (inodes.size === 0) return false;
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        const socket = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        return socket?.[1] !== undefined && inodes.has(socket[1]);
      } catch {
        return false; // closed meanwhile
      }
    });
  } catch {
    return false; // the process is gone
  }
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface RunningService {
  process: ChildProcess;
  port: number;
  url: string;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface Stack {
  env: Record<string, string>;
  databaseUrl: string;
  ingestToken: string;
  apiToken: string;
  services: Partial<Record<ServiceName, RunningService>>;
  /**
   * Starts a service process and waits until it is ready (`/readyz` answers 200), or only alive (`/healthz`) with
   * `waitFor: 'alive'`, for a service whose dependencies are down on purpose.
   */
  start(
    name: ServiceName,
    extraEnv?: Record<string, string>,
    options?: { waitFor?: 'ready' | 'alive'; newPortsIfTaken?: boolean },
  ): Promise<RunningService>;
  url(name: ServiceName): string;
  /** Where Prometheus scrapes the service: its metrics port (cdr-ingest, records-api), else its only port. */
  metricsUrl(name: ServiceName): string;
}

export async function startStack(options: { services?: ServiceName[]; env?: Record<string, string> } = {}): Promise<Stack> {
  const database = await testDatabase();
  const redis = await testRedis();
  const ingestToken = 'e2e-ingest-token-0123456789';
  const apiToken = 'e2e-api-token-0123456789abcdef';
  const ports = {} as Record<ServiceName, number>;
  for (const name of Object.keys(PORT_ENV) as ServiceName[]) ports[name] = await freePort();
  const metricsPorts: Partial<Record<ServiceName, number>> = {};
  for (const name of Object.keys(METRICS_PORT_ENV) as ServiceName[]) metricsPorts[name] = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    DATABASE_URL: database.url,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: redis.prefix,
    INGEST_TOKEN: ingestToken,
    API_TOKEN: apiToken,
    LOG_LEVEL: 'info',
    INGEST_HOST: '127.0.0.1',
    API_HOST: '127.0.0.1',
    POLICY_WORKER_HOST: '127.0.0.1',
    ACTUATOR_HOST: '127.0.0.1',
    ...options.env,
  };
  for (const [name, variable] of Object.entries(PORT_ENV)) env[variable] = String(ports[name as ServiceName]);
  for (const [name, variable] of Object.entries(METRICS_PORT_ENV)) env[variable] = String(metricsPorts[name as ServiceName]);

  const services: Stack['services'] = {};
  const stack: Stack = {
    env,
    databaseUrl: database.url,
    ingestToken,
    apiToken,
    services,
    url: (name) => `http://127.0.0.1:${ports[name]}`,
    metricsUrl: (name) => `http://127.0.0.1:${metricsPorts[name] ?? ports[name]}`,
    async start(name, extraEnv = {}, startOptions = {}) {
      const probe = startOptions.waitFor === 'alive' ? 'healthz' : 'readyz';
      for (let attempt = 1; ; attempt++) {
        const child = spawn(process.execPath, [`services/${name}/src/main.ts`], {
          cwd: ROOT,
          env: { ...env, ...extraEnv },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const output: string[] = [];
        child.stdout.on('data', (d) => output.push(String(d)));
        child.stderr.on('data', (d) => output.push(String(d)));
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
          child.on('exit', (code, signal) => resolve({ code, signal })),
        );
        const running: RunningService = { process: child, port: ports[name], url: stack.url(name), output, exited };
        services[name] = running;
        let gone = false;
        void exited.then(() => {
          gone = true;
        });
        const started = await eventually(
          async () => {
            if (gone) return 'exited';
            // The port is ours before its answer counts: another test file's service that took the port between
            // freePort and our bind would answer /readyz too, while ours exits for want of the port.
            if (!ownsPort(child.pid, running.port)) return false;
            const res = await fetch(`${running.url}/${probe}`);
            return res.ok && 'ready';
          },
          { what: `${name} to answer /${probe}`, timeoutMs: 20_000, intervalMs: 100 },
        );
        if (started === 'ready') return running;
        // Taken by someone else before the service bound it: before the test has seen the stack's addresses, new
        // ports for this service; after (a restart), the test relies on the address, so it fails here, loudly.
        if (startOptions.newPortsIfTaken && attempt < 3 && /the port is in use/.test(output.join(''))) {
          ports[name] = await freePort();
          env[PORT_ENV[name]] = String(ports[name]);
          const metricsVariable = METRICS_PORT_ENV[name];
          if (metricsVariable) {
            metricsPorts[name] = await freePort();
            env[metricsVariable] = String(metricsPorts[name]);
          }
          continue;
        }
        throw new Error(`${name} exited during start-up:\n${output.join('')}`);
      }
    },
  };
  onTestFileEnd(async () => {
    for (const s of Object.values(services)) {
      if (s && s.process.exitCode === null && s.process.signalCode === null) {
        s.process.kill('SIGKILL');
        await s.exited;
      }
    }
  });
  for (const name of options.services ?? (['cdr-ingest', 'policy-worker', 'records-api'] as ServiceName[])) {
    await stack.start(name, {}, { newPortsIfTaken: true });
  }
  return stack;
}

/** How many rows `cdr_records` holds for `session`, and how many distinct records (by correlatorIndex) they are. */
export async function storedRecords(databaseUrl: string, session: string): Promise<{ total: number; distinct: number }> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 2_000 });
  await client.connect();
  try {
    const { rows } = await client.query(
      'SELECT count(*)::int AS total, count(DISTINCT correlator_index)::int AS distinct FROM cdr_records WHERE session = $1',
      [session],
    );
    return rows[0];
  } finally {
    await client.end();
  }
}
