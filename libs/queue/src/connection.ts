import { Redis, type RedisOptions } from 'ioredis';

/**
 * A Redis connection for a given role:
 * - 'producer': fails fast while Redis is unreachable (no offline queue), so ingest can answer 503
 *   at once and CMS re-sends later instead of the request hanging.
 * - 'worker': waits and reconnects for ever, as BullMQ workers require (maxRetriesPerRequest: null).
 */
export function createRedisConnection(url: string, role: 'producer' | 'worker', options: RedisOptions = {}): Redis {
  const base: RedisOptions =
    role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 }
      : { maxRetriesPerRequest: null, enableReadyCheck: true };
  return new Redis(url, {
    ...base,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
    lazyConnect: false,
    ...options,
  });
}

export type { Redis };
