import { Redis, type RedisOptions, ReplyError } from 'ioredis';

/** Where Redis is: config's `redis` (a URL, or Redis Sentinel's addresses and master name), or a URL alone. */
export interface RedisTarget {
  url: string;
  /** Sentinels to ask for the master of `sentinelName`; empty or absent: connect to `url`. */
  sentinels?: readonly { host: string; port: number }[];
  sentinelName?: string;
  sentinelPassword?: string;
}

/**
 * ioredis' options for a target: with sentinels, ioredis asks them for the master (and asks again on every
 * reconnect, so a failover looks like a Redis restart to the services); the URL then gives only the master's
 * password, user name and database.
 */
function targetOptions(target: RedisTarget): RedisOptions {
  if (!target.sentinels?.length) return {};
  return {
    sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
    name: target.sentinelName ?? 'mymaster',
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
  };
}

/**
 * A Redis connection for a given role, to `target` (config's `redis`, or a URL):
 * - 'producer': fails fast while Redis is unreachable (no offline queue), so ingest can answer 503
 *   at once and CMS re-sends later instead of the request hanging. A command that was in flight when the
 *   connection broke is not re-sent on reconnect: its caller has been told it failed (and answered 503), so
 *   running it later behind the caller's back would only store a batch that CMS is going to re-send.
 * - 'worker': waits and reconnects for ever, as BullMQ workers require (maxRetriesPerRequest: null).
 */
export function createRedisConnection(target: string | RedisTarget, role: 'producer' | 'worker', options: RedisOptions = {}): Redis {
  const { url, ...rest } = typeof target === 'string' ? { url: target } : target;
  const base: RedisOptions =
    role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, autoResendUnfulfilledCommands: false }
      : { maxRetriesPerRequest: null, enableReadyCheck: true };
  return new Redis(url, {
    ...base,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
    lazyConnect: false,
    ...targetOptions({ url, ...rest }),
    ...options,
  });
}

/** Redis cannot take a write now (not connected, or it did not answer in time). Transient: try again later. */
export class RedisUnavailableError extends Error {
  /** ioredis' connection status when the write was refused (connecting, reconnecting, ...), or 'timeout'. */
  readonly status: string;
  constructor(status: string, options?: { cause?: unknown }) {
    super(`Redis is unavailable (connection ${status})`, options);
    this.name = 'RedisUnavailableError';
    this.status = status;
  }
}

/**
 * What a failed Redis command means for its caller: a ReplyError (Redis answered with an error: out of memory, a
 * script error) is returned as it is; anything else (connection lost mid-command, command timed out) means Redis
 * could not be reached and becomes RedisUnavailableError.
 */
export function classifyRedisError(redis: Redis, err: unknown): Error {
  if (err instanceof ReplyError) return err as Error;
  return new RedisUnavailableError(redis.status === 'ready' ? 'ready, but the command failed' : redis.status, { cause: err });
}

/** Connection states in which ioredis is still trying a connection that has not failed yet. */
const CONNECTING = new Set(['wait', 'connecting', 'connect']);

/**
 * Resolves once `redis` is ready; throws RedisUnavailableError at once while it is reconnecting after a failure
 * (Redis known to be away), or after `waitMs` when a connection attempt is still under way (start-up). BullMQ itself
 * waits for a connection that is not ready (for ever, when Redis is down at start-up) instead of failing the
 * command, so a producer that must answer now checks here first.
 */
export async function redisReady(redis: Redis, waitMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  if (!CONNECTING.has(redis.status)) throw new RedisUnavailableError(redis.status);
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const onClose = () => done(new RedisUnavailableError(redis.status));
    const timer = setTimeout(() => done(new RedisUnavailableError(redis.status)), waitMs);
    redis.once('ready', onReady);
    redis.once('close', onClose);
  });
}

export type { Redis };
