/**
 * Delay before retry `attemptsMade` (1 = first retry) of a write that failed with 5xx/timeout: exponential,
 * capped, with jitter over the upper half so replicas that failed together do not retry in step.
 */
export function retryDelay(attemptsMade: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(baseMs * 2 ** Math.max(0, attemptsMade - 1), maxMs);
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * How long a node's queue pauses after a 503 ("busy, retry later"): doubling per consecutive 503, reset by the
 * first request CMS answers. Per replica; the pause itself applies to the node's whole queue.
 */
export class BusyBackoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  #nextMs: number;

  constructor(initialMs: number, maxMs: number) {
    this.#initialMs = initialMs;
    this.#maxMs = maxMs;
    this.#nextMs = initialMs;
  }

  next(): number {
    const delay = this.#nextMs;
    this.#nextMs = Math.min(this.#nextMs * 2, this.#maxMs);
    return delay;
  }

  reset(): void {
    this.#nextMs = this.#initialMs;
  }
}
