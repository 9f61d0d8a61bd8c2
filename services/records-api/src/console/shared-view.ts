import type { FastifyRequest } from 'fastify';

/** What an API read answered: the parsed body, or the status and problem detail of a refusal. */
export type ApiAnswer = { ok: true; body: unknown } | { ok: false; status: number; detail: string };

/** One answer of a shared view, numbered so a stream can tell a new one from the one it has. */
export interface Published {
  seq: number;
  answer: ApiAnswer;
}

/**
 * One read loop for every live stream that shows the same view to the same role: N operators watching the meetings
 * cost one read of the API per interval, not N (each read of the meetings view is up to 20 pages of calls and the
 * lobby). The API answers a GET the same for every principal of a role, so a read made with any one stream's
 * credentials serves them all; it is made with the oldest stream's, and each stream still checks its own session
 * (live.ts). The loop runs while the view has streams and stops with the last one.
 */
export class SharedView {
  readonly #read: (request: FastifyRequest) => Promise<ApiAnswer>;
  readonly #intervalMs: number;
  readonly #onIdle: () => void;
  /** The streams' requests, oldest first (a Set keeps insertion order). */
  readonly #requests = new Set<FastifyRequest>();
  #latest: Published | null = null;
  #waiting: ((published: Published) => void)[] = [];
  #running = false;

  constructor(options: { read: (request: FastifyRequest) => Promise<ApiAnswer>; intervalMs: number; onIdle: () => void }) {
    this.#read = options.read;
    this.#intervalMs = options.intervalMs;
    this.#onIdle = options.onIdle;
  }

  /** Adds a stream; its reads run while it stays (until `leave`). */
  join(request: FastifyRequest): void {
    this.#requests.add(request);
    if (!this.#running) void this.#loop();
  }

  leave(request: FastifyRequest): void {
    this.#requests.delete(request);
  }

  /**
   * The next answer after `seq` (0: any): the latest one at once when it is newer, else the next read's. A stream that
   * joins a running view gets the current answer without waiting for a read.
   */
  next(seq: number): Promise<Published> {
    if (this.#latest && this.#latest.seq > seq) return Promise.resolve(this.#latest);
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  async #loop(): Promise<void> {
    this.#running = true;
    try {
      for (;;) {
        const [reader] = this.#requests;
        if (!reader) break;
        let answer: ApiAnswer;
        try {
          answer = await this.#read(reader);
        } catch (err) {
          reader.log.warn({ err }, 'live view read failed');
          answer = { ok: false, status: 503, detail: 'The live view could not read the API; retrying.' };
        }
        this.#latest = { seq: (this.#latest?.seq ?? 0) + 1, answer };
        const waiting = this.#waiting;
        this.#waiting = [];
        for (const resolve of waiting) resolve(this.#latest);
        // Unref'd: a view whose streams were stopped by a shutdown must not hold the process open.
        await new Promise((resolve) => setTimeout(resolve, this.#intervalMs).unref());
      }
    } finally {
      this.#running = false;
      this.#latest = null;
      this.#onIdle();
    }
  }
}

/** The shared views of one records-api, by role and what they show; a view is dropped once its last stream leaves. */
export class SharedViews {
  readonly #views = new Map<string, SharedView>();
  readonly #intervalMs: number;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  /** The view `what` (a path, or a name of the console's own) for `role`, read by `read`. */
  view(role: string, what: string, read: (request: FastifyRequest) => Promise<ApiAnswer>): SharedView {
    const key = `${role}\n${what}`;
    let view = this.#views.get(key);
    if (!view) {
      const created = new SharedView({ read, intervalMs: this.#intervalMs, onIdle: () => this.#views.delete(key) });
      this.#views.set(key, created);
      view = created;
    }
    return view;
  }
}
