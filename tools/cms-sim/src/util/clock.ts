/**
 * Simulated time. With speed > 1 a 30-minute scenario runs in seconds while CDR times and durations still
 * describe 30 minutes. Real-time concerns (API latency, the write-rate window, CDR back-off) use Date.now().
 */
export class SimClock {
  readonly speed: number;
  readonly #realStart: number;
  readonly #simStart: number;

  constructor(speed = 1, start: number = Date.now()) {
    if (!(speed > 0)) throw new RangeError(`speed must be > 0, got ${speed}`);
    this.speed = speed;
    this.#realStart = Date.now();
    this.#simStart = start;
  }

  now(): number {
    return this.#simStart + (Date.now() - this.#realStart) * this.speed;
  }

  /** RFC 3339 UTC without fractions, as CMS writes record times. */
  timestamp(ms: number = this.now()): string {
    return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  }

  /** Real milliseconds that correspond to `simMs` of simulated time. */
  toReal(simMs: number): number {
    return simMs / this.speed;
  }
}

export function seconds(ms: number): number {
  return Math.max(0, Math.floor(ms / 1000));
}
