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
