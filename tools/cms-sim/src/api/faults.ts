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
