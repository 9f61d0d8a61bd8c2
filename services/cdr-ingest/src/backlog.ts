import type { Queue } from 'bullmq';

/**
 * Keeps a recent count of waiting batches without a Redis round trip per POST: refreshed in the background,
 * at most every `intervalMs`. Used to answer 503 before Redis fills up when the workers fall behind.
 */
export class BacklogGauge {
  #queue: Queue;
  #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #value = 0;

  constructor(queue: Queue, intervalMs = 500) {
    this.#queue = queue;
    this.#intervalMs = intervalMs;
  }

  get value(): number {
    return this.#value;
  }

  async refresh(): Promise<number> {
    try {
      this.#value = await this.#queue.getWaitingCount();
    } catch {
      // Redis unreachable: the enqueue itself will fail and answer 503; keep the last known value.
    }
    return this.#value;
  }

  start(): void {
    const tick = () => {
      this.refresh().finally(() => {
        if (this.#timer) this.#timer = setTimeout(tick, this.#intervalMs).unref();
      });
    };
    this.#timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
