import { randomUUID } from 'node:crypto';
import type { Redis } from '@cms/queue';

/**
 * Sliding-log ceiling shared by every replica: at most `limit` sends per `windowMs`, timed by Redis's clock so
 * replicas on different hosts agree. Returns 0 when the caller may send now (its send is logged), otherwise how
 * many ms until the oldest send leaves the window.
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now + 1)
`;

export interface WriteCeiling {
  /** Writes allowed per window. */
  limit: number;
  /** The window, without margin. */
  windowMs: number;
}

/**
 * maxWritesPerSecond as "N writes in any window": N per second when N >= 1 (a fraction is rounded down, never up);
 * below 1 write a second, one write per 1/N seconds.
 */
export function writeCeiling(maxWritesPerSecond: number): WriteCeiling {
  if (maxWritesPerSecond >= 1) return { limit: Math.floor(maxWritesPerSecond), windowMs: 1000 };
  return { limit: 1, windowMs: Math.ceil(1000 / maxWritesPerSecond) };
}

/**
 * The node's write ceiling, checked right before each PUT. BullMQ's limiter paces the jobs (and so covers every
 * replica), but it counts job starts in fixed windows, and a job's PUT follows its start by a variable GET time:
 * only a check at send time guarantees what CMS sees. Both use the same ceiling, so the gate rarely has to wait.
 * Reconciliation paces its reads with the same class on a key of its own (reconcile/paced-read-client.ts).
 */
export class WriteGate {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #limit: number;
  readonly #windowMs: number;

  constructor(redis: Redis, key: string, ceiling: WriteCeiling, marginMs: number) {
    this.#redis = redis;
    this.#key = key;
    this.#limit = ceiling.limit;
    this.#windowMs = ceiling.windowMs + marginMs;
  }

  /** Resolves when a write may be sent now (and counts it). */
  async acquire(): Promise<void> {
    const member = randomUUID();
    for (;;) {
      const waitMs = Number(await this.#redis.eval(ACQUIRE, 1, this.#key, this.#limit, this.#windowMs, member));
      if (waitMs <= 0) return;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}
