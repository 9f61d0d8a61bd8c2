import { type FaultOptions, mergeFaults, type ResolvedFaults } from '../options.ts';
import type { Random } from '../util/prng.ts';

export interface ApiCounters {
  apiRequests: number;
  /** Writes that reached the model (whatever their answer). */
  apiWrites: number;
  /** Writes refused with 503 because the bridge's write ceiling was reached. */
  writeViolations: number;
  /** Requests answered 503 by the random fault. */
  fault503: number;
  /** Requests answered 503 while the bridge was restarting. */
  restarting503: number;
  unauthorized: number;
  /** Requests answered 403 by the `forbidden` fault. */
  forbidden: number;
}

/** One API request as it arrived (before latency or faults), for tests that check how a client paces itself. */
export interface ApiRequestEntry {
  atMs: number;
  method: string;
  /** Path with query string, as sent. */
  url: string;
}

/** A write failure armed by a test: the next matching writes get this answer and change nothing. */
export interface WriteFailureSpec {
  /** The `<failureDetails>` reason, e.g. callLegDoesNotExist, participantLimitReached, parameterError. */
  failureReason: string;
  /** HTTP status; default 404 for the *DoesNotExist reasons, 503 for databaseNotReady/callBridgeUnavailable, else 400. */
  status?: number;
  /** For parameterError: the parameter named in the answer. */
  parameter?: string;
  /** Only writes with this method (POST, PUT, DELETE); default any. */
  method?: string;
  /** Only writes whose path (with query) contains this, case-insensitive; default any. */
  urlContains?: string;
  /** How many matching writes fail; default 1. */
  times?: number;
}

export interface ArmedWriteFailure {
  failureReason: string;
  status: number;
  parameter: string | undefined;
  method: string | undefined;
  urlContains: string | undefined;
  remaining: number;
}

function defaultFailureStatus(reason: string): number {
  if (reason.endsWith('DoesNotExist')) return 404;
  if (reason === 'databaseNotReady' || reason === 'callBridgeUnavailable') return 503;
  return 400;
}

export type GateVerdict = 'pass' | 'fault503' | 'rateLimited' | 'restarting';

/** Per-bridge fault injection: latency, random 503s, the write ceiling (sliding one-second window), restart downtime. */
export class FaultGate {
  faults: ResolvedFaults;
  /** Real ms until which the bridge answers 503 (simulated restart). */
  downUntil = 0;
  readonly counters: ApiCounters = {
    apiRequests: 0,
    apiWrites: 0,
    writeViolations: 0,
    fault503: 0,
    restarting503: 0,
    unauthorized: 0,
    forbidden: 0,
  };
  /** Every API request's arrival, oldest first, bounded like the write log. */
  readonly requests: ApiRequestEntry[] = [];
  readonly #requestLimit: number;
  readonly #random: Random;
  #window: number[] = [];
  #failures: ArmedWriteFailure[] = [];

  constructor(faults: ResolvedFaults, random: Random, requestLimit = 100_000) {
    this.faults = faults;
    this.#random = random;
    this.#requestLimit = requestLimit;
  }

  /** Counts an API request and keeps its arrival time. */
  arrived(entry: ApiRequestEntry): void {
    this.counters.apiRequests++;
    this.requests.push(entry);
    // Trim in chunks so a long run does not shift the whole array per request.
    if (this.requests.length > this.#requestLimit + Math.max(100, this.#requestLimit / 10))
      this.requests.splice(0, this.requests.length - this.#requestLimit);
  }

  set(change: FaultOptions): ResolvedFaults {
    this.faults = mergeFaults(this.faults, change);
    return this.faults;
  }

  armFailure(spec: WriteFailureSpec): ArmedWriteFailure {
    const times = spec.times ?? 1;
    if (!spec.failureReason || !/^\w+$/.test(spec.failureReason)) throw new RangeError('failureReason must be a CMS reason name');
    if (!(Number.isInteger(times) && times >= 1)) throw new RangeError('times must be a whole number >= 1');
    const status = spec.status ?? defaultFailureStatus(spec.failureReason);
    if (!(Number.isInteger(status) && status >= 400 && status <= 599)) throw new RangeError('status must be 4xx or 5xx');
    const armed: ArmedWriteFailure = {
      failureReason: spec.failureReason,
      status,
      parameter: spec.parameter,
      method: spec.method?.toUpperCase(),
      urlContains: spec.urlContains?.toLowerCase(),
      remaining: times,
    };
    this.#failures.push(armed);
    return armed;
  }

  clearFailures(): void {
    this.#failures = [];
  }

  get armedFailures(): readonly ArmedWriteFailure[] {
    return this.#failures;
  }

  /** The armed failure a write meets (used up one at a time), or null. */
  takeFailure(method: string, url: string): ArmedWriteFailure | null {
    const path = url.toLowerCase();
    const found = this.#failures.find(
      (f) => (f.method === undefined || f.method === method) && (f.urlContains === undefined || path.includes(f.urlContains)),
    );
    if (!found) return null;
    found.remaining--;
    if (found.remaining <= 0) this.#failures = this.#failures.filter((f) => f !== found);
    return found;
  }

  latency(): number {
    const { latencyMs, latencyJitterMs } = this.faults;
    return latencyMs + (latencyJitterMs > 0 ? this.#random.next() * latencyJitterMs : 0);
  }

  judge(isWrite: boolean, now: number = Date.now()): GateVerdict {
    if (now < this.downUntil) {
      this.counters.restarting503++;
      return 'restarting';
    }
    if (this.faults.fraction503 > 0 && this.#random.next() < this.faults.fraction503) {
      this.counters.fault503++;
      return 'fault503';
    }
    if (!isWrite) return 'pass';
    const ceiling = this.faults.maxWritesPerSecond;
    if (ceiling !== null) {
      this.#window = this.#window.filter((t) => now - t < 1000);
      if (this.#window.length >= ceiling) {
        this.counters.writeViolations++;
        return 'rateLimited';
      }
      this.#window.push(now);
    }
    this.counters.apiWrites++;
    return 'pass';
  }
}
