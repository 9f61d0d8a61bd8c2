import { HttpProblem } from '@cms/http';
import { createRedisConnection, type Redis, type RedisTarget, RedisUnavailableError, redisReady } from '@cms/queue';

/**
 * The console's Redis connection (sessions, queue depths). Lazy: a records-api that nobody signs in to never
 * opens it (the API itself needs no Redis); fails fast while Redis is away, so a page says so at once.
 */
export class ConsoleRedis {
  readonly #redis: Redis;

  constructor(target: RedisTarget) {
    this.#redis = createRedisConnection(target, 'producer', { lazyConnect: true });
    // Errors reach the caller of each command; without a listener ioredis would also print every reconnect failure.
    this.#redis.on('error', () => {});
  }

  /** The connection once it is ready, or 503 saying Redis cannot be reached. */
  async ready(what: string): Promise<Redis> {
    if (this.#redis.status === 'wait') this.#redis.connect().catch(() => {});
    try {
      await redisReady(this.#redis, 2_000);
    } catch (err) {
      if (err instanceof RedisUnavailableError) {
        throw new HttpProblem(503, 'Service Unavailable', `${what} are kept in Redis, which cannot be reached; try again shortly.`, {
          headers: { 'Retry-After': '5' },
        });
      }
      throw err;
    }
    return this.#redis;
  }

  async close(): Promise<void> {
    if (this.#redis.status === 'wait' || this.#redis.status === 'end') {
      this.#redis.disconnect();
      return;
    }
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
