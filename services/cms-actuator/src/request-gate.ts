import { randomUUID } from 'node:crypto';
import type { Redis } from '@cms/queue';

/**
 * Sliding-log ceiling shared by every replica: at most `limit` sends per `windowMs`, timed by Redis's clock so
 * replicas on different hosts agree. Returns 0 when the caller may send now (its send is logged), otherwise how
 * many ms to wait before asking again: until the oldest send leaves the window, or a short poll while every logged
 * send is still waiting for its answer. ARGV[4] > 0 logs the send as pending that long (its answer moves it, see
 * ANSWERED): a request still on its way never leaves the window, however slow.
 *
 * Urgent callers (ARGV[6] = 1: an operator's action) go first: while one waits (KEYS[2], each entry renewed by its
 * caller's polls), the others see that many places fewer, so the next free place is the urgent caller's. And the
 * others always see ARGV[7] places fewer (the reserve): at a ceiling kept full by message writes, the window frees
 * its places in bursts (every message write waiting takes one as soon as it frees), so without a place kept free an
 * urgent caller waits for the window to turn, up to a whole window (measured: 570 ms at 10 writes/s, bench:control).
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local pending = tonumber(ARGV[4])
local urgent = tonumber(ARGV[6]) == 1
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local reserved = 0
if not urgent then reserved = math.max(redis.call('ZCARD', KEYS[2]), tonumber(ARGV[7])) end
if redis.call('ZCARD', KEYS[1]) + reserved < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + pending, ARGV[3])
  if redis.call('PTTL', KEYS[1]) < pending + window then redis.call('PEXPIRE', KEYS[1], pending + window) end
  if urgent then redis.call('ZREM', KEYS[2], ARGV[3]) end
  return 0
end
if urgent then
  -- Kept a second past the caller's next poll (timers fire late on a busy host); a caller that died holds it no longer.
  redis.call('ZADD', KEYS[2], now + window + 1000, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], window + 2000)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
if not first then return tonumber(ARGV[5]) end
local oldest = tonumber(first)
if oldest > now then return tonumber(ARGV[5]) end
return math.max(1, oldest + window - now + 1)
`;

/**
 * Moves a logged send to the time its request was answered (Redis's clock), logging it again if it had left: CMS
 * received it at some moment in between, so counting the window from the answer keeps the next send a whole
 * window after the arrival, however long the request took to get there. The margin (ARGV[3]) is taken off: it is
 * there for sends counted from when they left, which CMS may handle a little later; an answered request was handled
 * before its answer, so the ceiling's own window from the answer already keeps any two of CMS's arrivals a window
 * apart (both times on Redis's clock, the next send leaving after its ACQUIRE). Counting the margin here too held
 * writes back for nothing at a busy second (up to 100 ms each, measured: bench/results/policy.md, 2026-12-07).
 */
const ANSWERED = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now - tonumber(ARGV[3]), ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
return 0
`;

/** How often a caller asks again while every send in the window is still waiting for its answer. */
const PENDING_POLL_MS = 25;

/** One send the gate let through. */
export interface GateSlot {
  /**
   * Call once the request has been answered (or has failed): its place in the window then counts from now, for the
   * ceiling's window without the margin (see ANSWERED). Without it the send counts as on its way until its pending
   * time is over. Never throws (Redis unreachable: the send-time count stays).
   */
  answered(): Promise<void>;
}

export interface RequestCeiling {
  /** Requests allowed per window. */
  limit: number;
  /** The window, without margin. */
  windowMs: number;
}

/**
 * maxWritesPerSecond as "N writes in any window": N per second when N >= 1 (a fraction is rounded down, never up);
 * below 1 write a second, one write per 1/N seconds.
 */
export function writeCeiling(maxWritesPerSecond: number): RequestCeiling {
  if (maxWritesPerSecond >= 1) return { limit: Math.floor(maxWritesPerSecond), windowMs: 1000 };
  return { limit: 1, windowMs: Math.ceil(1000 / maxWritesPerSecond) };
}

/**
 * A node's request ceiling, shared by every replica through one Redis key: the write ceiling, checked right before
 * each PUT, and (on a key of its own) the read ceiling of reconciliation and placement.
 *
 * For writes: BullMQ's limiter paces the jobs (and so covers every
 * replica), but it counts job starts in fixed windows, and a job's PUT follows its start by a variable GET time:
 * only a check at send time guarantees what CMS sees. A request also takes a variable time to reach CMS (a busy
 * event loop, a slow network): writes that leave together may arrive apart, so a write sent a window after the
 * first of them could arrive less than a window after the last. Hence `answered()`: the window of each write counts
 * from its answer, by which time CMS has surely received it. Reconciliation paces its reads with the same class on a
 * key of its own (reconcile/paced-read-client.ts), counting from the send.
 */
export class RequestGate {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #limit: number;
  /** The ceiling's window plus the margin: how long a send counted from when it left stays in the log. */
  readonly #windowMs: number;
  readonly #marginMs: number;
  readonly #pendingMs: number;
  readonly #reservedForUrgent: number;

  /**
   * `pendingMs`: how long a send taken with acquireSlot() counts as still on its way when no answer is reported
   * (a replica that died mid-request); the request deadline. Default 10 s. `reservedForUrgent`: places of each
   * window only urgent callers may take (below the limit; default none).
   */
  constructor(redis: Redis, key: string, ceiling: RequestCeiling, marginMs: number, pendingMs = 10_000, reservedForUrgent = 0) {
    if (!(reservedForUrgent >= 0 && reservedForUrgent < ceiling.limit)) {
      throw new RangeError(
        `the places reserved for urgent writes (${reservedForUrgent}) must be below the ceiling's limit (${ceiling.limit})`,
      );
    }
    this.#reservedForUrgent = reservedForUrgent;
    this.#redis = redis;
    this.#key = key;
    this.#limit = ceiling.limit;
    this.#windowMs = ceiling.windowMs + marginMs;
    this.#marginMs = marginMs;
    this.#pendingMs = pendingMs;
  }

  /** Resolves when a request may be sent now (and counts it from now). */
  async acquire(): Promise<void> {
    await this.#take(randomUUID(), 0);
  }

  /**
   * Like acquire(), for a request whose window should count from its answer: the send counts as on its way (it
   * never leaves the window) until `answered()` is called on the result.
   */
  async acquireSlot(options: { urgent?: boolean } = {}): Promise<GateSlot> {
    const member = randomUUID();
    await this.#take(member, this.#pendingMs, options.urgent === true);
    return {
      answered: async () => {
        await this.#redis.eval(ANSWERED, 1, this.#key, member, this.#windowMs, this.#marginMs).catch(() => undefined);
      },
    };
  }

  async #take(member: string, pendingMs: number, urgent = false): Promise<void> {
    for (;;) {
      const waitMs = Number(
        await this.#redis.eval(
          ACQUIRE,
          2,
          this.#key,
          `${this.#key}:urgent`,
          this.#limit,
          this.#windowMs,
          member,
          pendingMs,
          PENDING_POLL_MS,
          urgent ? 1 : 0,
          this.#reservedForUrgent,
        ),
      );
      if (waitMs <= 0) return;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}
