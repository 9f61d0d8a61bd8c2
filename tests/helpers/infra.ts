/**
 * Real Redis and Postgres for tests. Where REDIS_URL / DATABASE_URL are set they are used; otherwise, where a
 * Docker engine answers, testcontainers starts them; otherwise the local services on 127.0.0.1 are used.
 * Every test file gets its own database and queue prefix so files can run in parallel.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { after } from 'node:test';
import { createDatabase, type Database, ensureDatabase, pg, runMigrations } from '@cms/db';
import { createRedisConnection } from '@cms/queue';

/**
 * Cleanups run once, after every test of the file. (node:test's `after()` called inside a `before()` hook
 * would run as soon as that hook ends, so helpers register here instead.)
 */
const cleanups: (() => Promise<void> | void)[] = [];
/**
 * How long one cleanup may take. A cleanup that hangs (a service whose close waits for a server a test stopped) must
 * not keep the ones after it, such as deleting the file's Redis keys and dropping its database, from running.
 * (TEST_CLEANUP_TIMEOUT_MS shortens it for the test of this.)
 */
const CLEANUP_TIMEOUT_MS = Number(process.env.TEST_CLEANUP_TIMEOUT_MS) || 60_000;
after(async () => {
  for (const cleanup of cleanups.reverse()) {
    let timer: NodeJS.Timeout | undefined;
    try {
      const timedOut = new Promise<'timedOut'>((resolve) => {
        timer = setTimeout(() => resolve('timedOut'), CLEANUP_TIMEOUT_MS);
      });
      const outcome = await Promise.race([Promise.resolve().then(cleanup), timedOut]);
      if (outcome === 'timedOut')
        process.stderr.write(`a cleanup did not finish in ${CLEANUP_TIMEOUT_MS / 1000} s: going on with the next\n`);
    } catch (err) {
      process.stderr.write(`cleanup failed: ${(err as Error).message}\n`);
    } finally {
      clearTimeout(timer);
    }
  }
  // Every test of the file has reported. If a failed test leaked a connection, the process would never exit and the
  // runner would wait for it forever; exit then, keeping the exit code the runner set. (--test-force-exit is no
  // substitute: it can end a file before all of its tests have run.)
  setTimeout(() => {
    process.stderr.write('test file still running 10 s after its last test (a leaked handle): exiting\n');
    process.exit();
  }, 10_000).unref();
});

/** Registers `fn` to run after all tests of this file (last registered, first run). */
export function onTestFileEnd(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

const LOCAL_REDIS = 'redis://127.0.0.1:6379';
const LOCAL_POSTGRES = 'postgres://postgres@127.0.0.1:5432/postgres';

interface Urls {
  redisUrl: string;
  postgresUrl: string;
}

let urlsPromise: Promise<Urls> | undefined;

async function dockerAnswers(): Promise<boolean> {
  const socket = process.env.DOCKER_HOST ? undefined : '/var/run/docker.sock';
  if (socket && !existsSync(socket)) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

async function startContainers(): Promise<Urls> {
  const { Network } = await import('testcontainers');
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const { RedisContainer } = await import('@testcontainers/redis');
  // A network of their own: an engine started with --bridge=none has no default "bridge" network, and containers
  // put there get no ports. (Such an engine also needs TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1.)
  const network = await new Network().start();
  const [pgc, redis] = await Promise.all([
    new PostgreSqlContainer('postgres:17-alpine').withNetwork(network).start(),
    new RedisContainer('redis:7-alpine').withNetwork(network).start(),
  ]);
  onTestFileEnd(async () => {
    await Promise.all([pgc.stop(), redis.stop()]);
    await network.stop();
  });
  return { postgresUrl: pgc.getConnectionUri(), redisUrl: redis.getConnectionUrl() };
}

export function infraUrls(): Promise<Urls> {
  urlsPromise ??= (async () => {
    const envRedis = process.env.REDIS_URL;
    const envPg = process.env.DATABASE_URL;
    if (!envRedis && !envPg && (await dockerAnswers())) return startContainers();
    return { redisUrl: envRedis ?? LOCAL_REDIS, postgresUrl: envPg ?? LOCAL_POSTGRES };
  })();
  return urlsPromise;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export interface TestDatabase {
  url: string;
  db: Database;
}

/** A fresh, migrated database for this test file, dropped when the file's tests end. */
export async function testDatabase(): Promise<TestDatabase> {
  const { postgresUrl } = await infraUrls();
  const url = new URL(postgresUrl);
  url.pathname = `/${uniqueName('cms_test')}`;
  await ensureDatabase(url.toString());
  await runMigrations(url.toString());
  const db = createDatabase(url.toString(), { max: 10, applicationName: 'cms-test' });
  onTestFileEnd(async () => {
    await db.$client.end();
    const admin = new URL(postgresUrl);
    admin.pathname = '/postgres';
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(url.pathname.slice(1))} WITH (FORCE)`);
    await client.end();
  });
  return { url: url.toString(), db };
}

/**
 * Deletes every key whose name starts with `prefix` (SCAN, not KEYS, so a shared Redis is never blocked).
 * Returns how many were deleted.
 */
export async function deleteRedisKeys(url: string, prefix: string): Promise<number> {
  // A prefix is made of letters, digits, "_" and "-": escape anyway, so it can never widen the glob.
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const redis = createRedisConnection(url, 'producer', { enableOfflineQueue: true, maxRetriesPerRequest: 3 });
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length) deleted += await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

/**
 * A Redis URL and a queue prefix nobody else uses. When the file's tests end, every key starting with the prefix is
 * deleted: BullMQ's (`<prefix>:<queue>:…`), the services' own (`<prefix>:cms-write-gate:…`, `<prefix>:cms-placement:…`)
 * and those of the sub-prefixes tests derive from it (`<prefix>-<n>:…`). Registered now, so it runs after the
 * cleanups of anything started later with this prefix (last registered, first run) and no service writes after it.
 */
export async function testRedis(): Promise<{ url: string; prefix: string }> {
  const { redisUrl } = await infraUrls();
  const prefix = uniqueName('test');
  onTestFileEnd(async () => {
    await deleteRedisKeys(redisUrl, prefix);
  });
  return { url: redisUrl, prefix };
}

/** Polls `probe` until it returns a value that is not undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${options.what ?? 'condition'}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 25));
  }
}
