/**
 * Knobs of the actuator that are not part of the operator's config file. The defaults are what production runs
 * with; tests shorten the delays so that a retry or a health probe takes milliseconds instead of seconds.
 */
export interface ActuatorTuning {
  /**
   * Jobs one replica works on at once per node (desired-state read, GET, PUT, bookkeeping each); default 4. Changes
   * that come together (a meeting's first joins) are written together when the ceiling has room: with 2, the third
   * waited for a whole job of the first two, which under load took 100-300 ms (measured, bench/results/policy.md).
   */
  concurrency: number;
  /** CMS connect deadline; default 5000 ms. */
  connectTimeoutMs: number;
  /** CMS request deadline; default 10000 ms. */
  requestTimeoutMs: number;
  /** First retry delay after a 5xx/timeout, doubled per attempt with jitter; default 1000 ms. */
  retryBaseDelayMs: number;
  /** Longest retry delay; default 60000 ms. */
  retryMaxDelayMs: number;
  /** How long a node's queue pauses after the first 503, doubled per further 503; default 1000 ms. */
  busyInitialDelayMs: number;
  /** Longest pause after 503s; default 30000 ms. */
  busyMaxDelayMs: number;
  /** While a node refuses our credentials, how often GET /api/v1/system/status is tried; default 10000 ms. */
  healthProbeIntervalMs: number;
  /** How often the queue-depth gauge is refreshed; default 5000 ms. */
  queueDepthIntervalMs: number;
  /** How long a job stays locked to a replica that stopped answering (crash) before another takes it; config actuator.lockDurationMs. */
  lockDurationMs: number;
  /** How often a replica looks for such stalled jobs; default 30000 ms. */
  stalledIntervalMs: number;
  /**
   * Least time between two message writes to the same call. A change arriving sooner waits (its job is delayed,
   * and further changes fold into it), so a burst of joins costs a leading write and one trailing write, and
   * participants do not see the message flicker. From config actuator.messageMinIntervalMs (default 200 ms).
   */
  callMessageMinIntervalMs: number;
  /**
   * Added to the window of the write ceiling for a send counted from when it left (CMS counts writes when it handles
   * them, which can be a little later), and to the BullMQ limiter's window. A PUT whose answer was recorded counts
   * the ceiling's own window from that answer, without it: CMS had handled it by then (request-gate.ts ANSWERED).
   * Default 100 ms.
   */
  writeWindowMarginMs: number;
  /**
   * Places of the write ceiling message writes leave to operator actions (at most the ceiling's limit minus one).
   * From config actuator.interactiveReservedWrites (default 1: under a full ceiling an action then waits p99 ~20 ms
   * instead of ~120; security messages below the ceiling did not wait for it in bench:policy).
   */
  interactiveReservedWrites: number;
  /** How often desired state that never got a write job (pending) and calls of unknown node (unplaced) are looked for; default 30000 ms. */
  sweepIntervalMs: number;
  /** A pending desired state younger than this is left to its producer's job; default 10000 ms. */
  sweepMinAgeMs: number;
  /** Rows one sweep handles at most (oldest first; the rest wait for the next sweep); default 500. */
  sweepBatchSize: number;
  /** A read of a reconciliation pass that CMS answers 503 is retried after a doubling pause this many times at most; default 8. */
  readBusyRetries: number;
  /** A read that times out or meets a 5xx is retried this many times at most; default 3. */
  readRetries: number;
}

const DEFAULT_TUNING: ActuatorTuning = {
  concurrency: 4,
  connectTimeoutMs: 5000,
  requestTimeoutMs: 10_000,
  retryBaseDelayMs: 1000,
  retryMaxDelayMs: 60_000,
  busyInitialDelayMs: 1000,
  busyMaxDelayMs: 30_000,
  healthProbeIntervalMs: 10_000,
  queueDepthIntervalMs: 5000,
  lockDurationMs: 30_000,
  stalledIntervalMs: 30_000,
  callMessageMinIntervalMs: 200,
  writeWindowMarginMs: 100,
  interactiveReservedWrites: 1,
  sweepIntervalMs: 30_000,
  sweepMinAgeMs: 10_000,
  sweepBatchSize: 500,
  readBusyRetries: 8,
  readRetries: 3,
};

export function resolveTuning(overrides: Partial<ActuatorTuning> = {}): ActuatorTuning {
  const tuning = { ...DEFAULT_TUNING };
  for (const [key, value] of Object.entries(overrides) as [keyof ActuatorTuning, number | undefined][]) {
    if (value === undefined) continue;
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`actuator tuning ${key} must be a number >= 0`);
    tuning[key] = value;
  }
  if (tuning.concurrency < 1) throw new RangeError('actuator tuning concurrency must be >= 1');
  return tuning;
}
