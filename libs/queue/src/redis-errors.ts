/**
 * `error` listeners for everything that talks to Redis: BullMQ queues, workers and queue events, and ioredis
 * connections.
 *
 * Without a listener, BullMQ prints the raw error with its stack trace to stderr (console.error) and ioredis prints
 * "[ioredis] Unhandled error event"; an operator's log pipeline then meets lines that are not JSON. With one, each
 * error becomes one JSON log line with the error as an object. During an outage every connection fails on every
 * reconnect attempt, so the same error is logged once per window (across all sources of one logger) and the next
 * line after the window says how many were left out.
 */

/** What this needs of a logger (pino's Logger fits). */
export interface RedisErrorLogger {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/** Anything that emits `error` (Queue, Worker, QueueEvents, FlowProducer, ioredis Redis). */
export interface ErrorEmitter {
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** How long the same error (same code and message) is logged only once; default 30 s. */
export const REDIS_ERROR_WINDOW_MS = 30_000;

interface Seen {
  loggedAt: number;
  suppressed: number;
  sources: Set<string>;
}

interface LoggerState {
  seen: Map<string, Seen>;
  /** Connections that logged an error and have not been ready since. */
  failing: Set<string>;
}

/** Dedup state per logger, so every caller that shares a logger shares its window without passing state around. */
const states = new WeakMap<object, LoggerState>();

function stateOf(log: RedisErrorLogger): LoggerState {
  let state = states.get(log);
  if (!state) {
    state = { seen: new Map(), failing: new Set() };
    states.set(log, state);
  }
  return state;
}

function keyOf(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return `${typeof code === 'string' ? code : ''}|${err.message}`;
}

export interface WatchOptions {
  /** Extra fields on each line (node, queue, ...). */
  fields?: Record<string, unknown>;
  windowMs?: number;
  /** For tests: the clock. */
  now?: () => number;
}

/**
 * Gives `emitter` an `error` listener that logs one JSON line per distinct error per window, naming `source`
 * (e.g. "queue cms-writes-cms1"). An ioredis connection also says, once, when it is ready again after errors.
 * Returns the emitter so it can wrap a constructor call.
 */
export function watchRedisErrors<E extends ErrorEmitter>(log: RedisErrorLogger, emitter: E, source: string, options: WatchOptions = {}): E {
  const state = stateOf(log);
  const windowMs = options.windowMs ?? REDIS_ERROR_WINDOW_MS;
  const now = options.now ?? Date.now;
  const withReady = emitter as unknown as { on(event: 'ready', listener: () => void): unknown; options?: unknown };
  // Only ioredis connections (they carry `options`) emit a useful 'ready'; BullMQ classes emit other things.
  const isConnection = withReady.options !== undefined;
  emitter.on('error', (err: Error) => {
    if (isConnection) state.failing.add(source);
    const key = keyOf(err);
    const at = now();
    const seen = state.seen.get(key);
    if (seen && at - seen.loggedAt < windowMs) {
      seen.suppressed++;
      seen.sources.add(source);
      return;
    }
    const repeated = seen ? { repeatedSinceLastLine: seen.suppressed, repeatedBy: [...seen.sources] } : {};
    state.seen.set(key, { loggedAt: at, suppressed: 0, sources: new Set() });
    log.warn(
      { ...options.fields, source, err, ...repeated },
      `redis error (${source}); the same error is logged at most once per ${Math.round(windowMs / 1000)} s`,
    );
  });
  if (isConnection) {
    withReady.on('ready', () => {
      if (!state.failing.delete(source)) return;
      // Redis is back: the next outage is news again, not a repeat to be left out.
      if (state.failing.size === 0) state.seen.clear();
      log.info({ ...options.fields, source }, `redis connection ready again (${source})`);
    });
  }
  return emitter;
}
