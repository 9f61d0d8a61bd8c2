/**
 * `npm start`: one terminal, the whole system. Finds (or starts) PostgreSQL and Redis, creates and migrates the
 * database, then runs the four services with prefixed logs under a supervisor that restarts a service that exits
 * (1 s, doubling to 30 s). SIGINT (Ctrl-C), SIGTERM and SIGHUP stop everything: each service finishes its work in hand
 * first, one that takes longer than 30 s is killed, then the PostgreSQL/Redis started here are stopped.
 *
 * Tokens are required by the services. When INGEST_TOKEN / API_TOKEN are not set, tokens are generated once
 * for this checkout, kept in .local/dev-secrets.json (git-ignored) and printed, so a first run just works.
 *
 * Without DATABASE_URL, and with nothing answering on 127.0.0.1:5432 (LOCAL_POSTGRES_PORT), an embedded PostgreSQL
 * is started with its data in .local/postgres; without REDIS_URL, and with nothing answering on 127.0.0.1:6379
 * (LOCAL_REDIS_PORT), the machine's redis-server is started with its data in .local/redis. LOCAL_DIR moves .local.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, ConfigError, configSchema, loadConfig } from '@cms/config';
import { ensureDatabase, runMigrations } from '@cms/db';
import { portInUseMessage } from '@cms/http';
import { createLogger, scrubConnectionUrl } from '@cms/observability';
import {
  findOnPath,
  localRedisSpec,
  portAnswers,
  portTaken,
  prepareEmbeddedPostgres,
  waitForPostgres,
  waitForRedis,
} from './lib/local-infra.ts';
import { type ExitEvent, Supervisor } from './lib/supervisor.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
// Straight to process.stdout (synchronous for files and pipes): the supervisor's lines stay in order with the
// services' output it relays, and none is lost when it exits right after its last line.
const log = createLogger('start', 'info', {}, process.stdout);

const env: Record<string, string> = { ...(process.env as Record<string, string>) };
const localDir = env.LOCAL_DIR ? resolve(env.LOCAL_DIR) : join(root, '.local');
const shown = (path: string) => {
  const rel = relative(root, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
};

/** Services (stopped first) and the PostgreSQL/Redis this script started (stopped after them). */
const services = new Supervisor([], { log, stopTimeoutMs: 30_000 });
const infra = new Supervisor([], { log, stopTimeoutMs: 30_000 });

// ---------------------------------------------------------------------------------------------------------------
// Stopping

let stopRequestedAt: number | undefined;
let stopped: Promise<void> | undefined;

function shutdown(exitCode: number): Promise<void> {
  stopRequestedAt ??= Date.now();
  stopped ??= (async () => {
    const forced = [...(await services.stop()).forced, ...(await infra.stop()).forced];
    if (forced.length > 0) log.warn({ forced }, `stopped; killed ${forced.join(', ')} after the deadline`);
    else log.info('stopped');
    process.exit(exitCode !== 0 ? exitCode : forced.length > 0 ? 1 : 0);
  })();
  return stopped;
}

function fail(message: string, fields: Record<string, unknown> = {}): Promise<void> {
  log.fatal(fields, message);
  return shutdown(1);
}

function onSignal(signal: NodeJS.Signals): void {
  if (stopRequestedAt === undefined) {
    log.info({ signal }, `${signal}: stopping (each service finishes its work in hand; a second Ctrl-C kills them now)`);
    void shutdown(0);
    return;
  }
  // A Ctrl-C under npm arrives twice at once (from the terminal and forwarded by npm): that is still one request.
  if (Date.now() - stopRequestedAt < 1_000) return;
  log.warn({ signal }, `${signal} again: killing everything now`);
  services.killNow();
  infra.killNow();
}
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

// `npm start | tee run.log`: a Ctrl-C ends tee too, and every later write here fails with EPIPE. The services must
// still be stopped in order, so output that cannot be written is dropped instead of ending this process.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});

// Whatever goes wrong here, the children are not left running without a supervisor.
process.on('uncaughtException', (err) => {
  void fail(`npm start failed: ${err.message}`, { err });
});
process.on('unhandledRejection', (err) => {
  void fail(`npm start failed: ${(err as Error)?.message ?? String(err)}`, { err });
});

// Run by npm, whose death would otherwise leave us (and the services, holding their ports) running unseen: when the
// parent goes away (npm killed with SIGKILL, or a shell between npm and us that died of npm's SIGTERM), stop.
if (env.npm_lifecycle_event) {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent && stopRequestedAt === undefined) {
      log.warn({ parent }, 'npm, which started this, has gone: stopping');
      void shutdown(0);
    }
  }, 1_000).unref();
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration

function devSecrets(): { INGEST_TOKEN: string; API_TOKEN: string } {
  const file = join(localDir, 'dev-secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const secrets = { INGEST_TOKEN: randomBytes(24).toString('base64url'), API_TOKEN: randomBytes(24).toString('base64url') };
  mkdirSync(localDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  return secrets;
}

const needsIngest = !env.INGEST_TOKEN && !env.INGEST_TOKEN_FILE;
const needsApi = !env.API_TOKEN && !env.API_TOKEN_FILE;
if (needsIngest || needsApi) {
  const secrets = devSecrets();
  if (needsIngest) env.INGEST_TOKEN = secrets.INGEST_TOKEN;
  if (needsApi) env.API_TOKEN = secrets.API_TOKEN;
}

function load(): Config {
  try {
    return loadConfig({ env });
  } catch (err) {
    if (err instanceof ConfigError) {
      log.fatal(err.message);
      process.exit(1);
    }
    throw err;
  }
}

function localPort(variable: string, fallback: number): number {
  const raw = env[variable];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    log.fatal(`${variable}: expected a port number, got "${raw}"`);
    process.exit(1);
  }
  return port;
}

let config = load();
const defaults = configSchema.parse({});

// ---------------------------------------------------------------------------------------------------------------
// The services' ports: a port already taken (often by the services of an earlier npm start that are still running)
// is said in one line per port, before anything is started.

const SERVICES = [
  { name: 'cdr-ingest', host: config.ingest.host, port: config.ingest.port, setting: 'INGEST_PORT' },
  { name: 'policy-worker', host: config.policyWorker.host, port: config.policyWorker.port, setting: 'POLICY_WORKER_PORT' },
  { name: 'cms-actuator', host: config.actuator.host, port: config.actuator.port, setting: 'ACTUATOR_PORT' },
  { name: 'records-api', host: config.api.host, port: config.api.port, setting: 'API_PORT' },
] as const;
// cdr-ingest's and records-api's /metrics listeners (their main ports are the published ones).
const METRICS_PORTS = [
  { name: 'cdr-ingest', host: config.ingest.host, port: config.ingest.metricsPort, setting: 'INGEST_METRICS_PORT' },
  { name: 'records-api', host: config.api.host, port: config.api.metricsPort, setting: 'API_METRICS_PORT' },
] as const;

let portsTaken = false;
for (const s of [...SERVICES, ...METRICS_PORTS]) {
  const taken = await portTaken(s.host, s.port);
  if (taken === null) continue;
  portsTaken = true;
  log.fatal(
    { service: s.name, host: s.host, port: s.port, code: taken },
    taken === 'EADDRINUSE'
      ? portInUseMessage(s.name, s.host, s.port, s.setting)
      : `${s.name} cannot listen on ${s.host}:${s.port} (${taken}): set ${s.setting} to another port`,
  );
}
if (portsTaken) process.exit(1);

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL and Redis: configured, found on the local port, or started here.

const firstExits = new Map<string, ExitEvent>();
infra.on('exit', (e: ExitEvent) => {
  if (!firstExits.has(e.name)) firstExits.set(e.name, e);
});
const goneWhy = (name: string) => () => {
  const e = firstExits.get(name);
  return e ? (e.signal ? `signal ${e.signal}` : `exit code ${e.code}`) : undefined;
};

let postgresLine: string;
let redisLine: string;
const pgPort = localPort('LOCAL_POSTGRES_PORT', 5432);
const redisPort = localPort('LOCAL_REDIS_PORT', 6379);
const databaseConfigured = Boolean(env.DATABASE_URL || env.DATABASE_URL_FILE) || config.database.url !== defaults.database.url;
const redisConfigured = Boolean(env.REDIS_URL || env.REDIS_URL_FILE) || config.redis.url !== defaults.redis.url;

let startRedis: { binary: string } | undefined;
if (redisConfigured) {
  redisLine = scrubConnectionUrl(config.redis.url);
} else if (await portAnswers('127.0.0.1', redisPort)) {
  env.REDIS_URL = `redis://127.0.0.1:${redisPort}`;
  redisLine = `the server answering on 127.0.0.1:${redisPort}`;
} else {
  const binary = findOnPath('redis-server', env.PATH);
  if (!binary) {
    log.fatal(
      `no Redis answers on 127.0.0.1:${redisPort} and redis-server is not installed: install it ` +
        '(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) and run npm start again, or set REDIS_URL',
    );
    process.exit(1);
  }
  startRedis = { binary };
  redisLine = `redis-server started by npm start, data in ${shown(join(localDir, 'redis'))} (127.0.0.1:${redisPort})`;
}

let embeddedPostgres = false;
if (databaseConfigured) {
  postgresLine = scrubConnectionUrl(config.database.url);
} else {
  const url = new URL(defaults.database.url);
  url.port = String(pgPort);
  if (await portAnswers('127.0.0.1', pgPort)) {
    postgresLine = `the server answering on 127.0.0.1:${pgPort} (${scrubConnectionUrl(url.toString())})`;
  } else {
    embeddedPostgres = true;
    postgresLine = `embedded PostgreSQL started by npm start, data in ${shown(join(localDir, 'postgres'))} (127.0.0.1:${pgPort})`;
  }
  env.DATABASE_URL = url.toString();
}

try {
  if (embeddedPostgres) {
    const dataDir = join(localDir, 'postgres');
    log.info({ dataDir }, `nothing answers on 127.0.0.1:${pgPort}: starting an embedded PostgreSQL`);
    const embedded = await prepareEmbeddedPostgres({ dataDir, port: pgPort });
    if (embedded.initialised) log.info({ dataDir }, `created a PostgreSQL cluster in ${shown(dataDir)}`);
    infra.add(embedded.spec);
    infra.startOne('postgres');
    await waitForPostgres(env.DATABASE_URL as string, goneWhy('postgres'));
  }
  if (startRedis) {
    log.info(`nothing answers on 127.0.0.1:${redisPort}: starting ${startRedis.binary}`);
    infra.add(localRedisSpec({ binary: startRedis.binary, dir: join(localDir, 'redis'), port: redisPort }));
    infra.startOne('redis');
    await waitForRedis(redisPort, goneWhy('redis'));
    env.REDIS_URL = `redis://127.0.0.1:${redisPort}`;
  }
} catch (err) {
  await fail(`cannot start the local database services: ${(err as Error).message}`, { err });
}

config = load();

try {
  const { created } = await ensureDatabase(config.database.url);
  if (created) log.info({ database: scrubConnectionUrl(config.database.url) }, 'created the database');
  await runMigrations(config.database.url);
} catch (err) {
  await fail('cannot prepare the database: is PostgreSQL running?', {
    database: scrubConnectionUrl(config.database.url),
    err,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The services

const host = (h: string) => (h === '0.0.0.0' ? '127.0.0.1' : h);
process.stdout.write(
  [
    '',
    `  CDR receiver:  http://${host(config.ingest.host)}:${config.ingest.port}/cdr/<node>?token=${needsIngest ? env.INGEST_TOKEN : '$INGEST_TOKEN'}`,
    `  Records API:   http://${host(config.api.host)}:${config.api.port}/api/v1/records  (Authorization: Bearer ${needsApi ? env.API_TOKEN : '$API_TOKEN'})`,
    `  API docs:      http://${host(config.api.host)}:${config.api.port}/docs`,
    `  PostgreSQL:    ${postgresLine}`,
    `  Redis:         ${redisLine}`,
    needsIngest || needsApi ? `  (generated tokens are kept in ${shown(join(localDir, 'dev-secrets.json'))})` : '',
    '',
  ].join('\n') + '\n',
);

for (const s of SERVICES) {
  services.add({ name: s.name, command: process.execPath, args: [`services/${s.name}/src/main.ts`], env, cwd: root });
}
services.start();
