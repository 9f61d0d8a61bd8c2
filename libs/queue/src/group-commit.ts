/**
 * Group commit: items handed in while a commit is running are written together in the next one, so many
 * small CMS POSTs cost a few Redis writes or Postgres transactions instead of one each, and nobody waits for
 * a timer. With `isolateFailures`, a failed group is retried item by item, so one bad batch fails alone
 * instead of taking its neighbours down with it.
 */
export interface GroupCommitOptions<T, R> {
  commit: (items: T[]) => Promise<R>;
  size: (item: T) => number;
  /** Upper bound on the summed size of one group. */
  maxGroupSize: number;
  /** Upper bound on the number of items in one group. */
  maxGroupItems?: number;
  isolateFailures?: boolean;
  /**
   * Commits that may run at once (default 1). Two let the next group be written while the previous one waits
   * for the database; the commit function must then be safe to run concurrently.
   */
  maxInFlight?: number;
  onCommitted?: (items: T[], result: R, ms: number) => void;
  /**
   * Start a commit only once the current event-loop turn is over (setImmediate), so that every item handed in
   * by the I/O callbacks of the same turn (requests that arrived together) joins one group. Costs no timer wait.
   */
  gatherTurn?: boolean;
}

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class GroupCommitter<T, R> {
  #options: GroupCommitOptions<T, R>;
  #pending: Pending<T>[] = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(options: GroupCommitOptions<T, R>) {
    this.#options = options;
  }

  /** Resolves once `item` is committed; rejects when its commit failed. */
  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  get pending(): number {
    return this.#pending.length;
  }

  #takeGroup(): Pending<T>[] {
    let size = 0;
    let count = 0;
    for (const p of this.#pending) {
      const s = this.#options.size(p.item);
      if (count > 0 && (size + s > this.#options.maxGroupSize || count >= (this.#options.maxGroupItems ?? Number.POSITIVE_INFINITY))) break;
      size += s;
      count++;
    }
    return this.#pending.splice(0, count);
  }

  #schedule(): void {
    if (!this.#options.gatherTurn) {
      this.#pump();
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#pending.length && this.#inFlight < (this.#options.maxInFlight ?? 1)) {
      const group = this.#takeGroup();
      this.#inFlight++;
      void this.#run(group).finally(() => {
        this.#inFlight--;
        this.#schedule();
      });
    }
  }

  async #run(group: Pending<T>[]): Promise<void> {
    try {
      await this.#commit(group.map((p) => p.item));
      for (const p of group) p.resolve();
    } catch (err) {
      if (group.length === 1 || !this.#options.isolateFailures) {
        for (const p of group) p.reject(err);
        return;
      }
      for (const p of group) {
        try {
          await this.#commit([p.item]);
          p.resolve();
        } catch (single) {
          p.reject(single);
        }
      }
    }
  }

  async #commit(items: T[]): Promise<void> {
    const started = performance.now();
    const result = await this.#options.commit(items);
    this.#options.onCommitted?.(items, result, performance.now() - started);
  }
}
