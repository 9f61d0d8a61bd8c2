/**
 * Readiness for a service's BullMQ workers, and an exit when one stops for good.
 *
 * A BullMQ worker can stop taking jobs while its process stays up: `Worker.close()` called from somewhere other
 * than the service's shutdown, its job loop ending (`run()` returned or threw — the services only log that), or
 * its Redis connection closed for good (ioredis status `end`: our worker connections retry for ever, so only an
 * explicit disconnect or a BullMQ fault gets there; BullMQ then retries its commands every 15 s for ever, doing
 * nothing). The Redis ping and the Postgres check still pass, so /readyz said "ready" for a service that does no
 * work. The signals used, read from BullMQ's Worker source (6.x):
 * - `closing` (public) is set, and the `closing` event emitted, the moment `close()` starts; a closed worker
 *   never runs again.
 * - `isRunning()` is false once `run()` has settled, for whatever reason. A paused worker's loop also ends
 *   (`isPaused()` is then true) and `resume()` runs it again: the actuator pauses a node's writer while CMS
 *   refuses our credentials, which its `cms:<node>` check reports; a pause is not a stop.
 * - The worker's connections (`getBackend().client`, and the blocking one BullMQ duplicates for itself) expose
 *   ioredis' `status`. BullMQ briefly takes the blocking one to `end` and back when it resets a stuck blocking
 *   command, so `end` counts only after it has lasted `connectionGraceMs`.
 *
 * Readiness alone does not get a worker restarted: nothing routes traffic to these services, and neither compose's
 * restart policy nor npm start's supervisor acts on an unhealthy check; both restart a process that exits. So a
 * service started by its main.ts also exits (code 1, one error line naming the queue) when a worker stops for good.
 * The exit is abrupt on purpose: it is the kill -9 / OOM path the services already survive (BullMQ's stalled-job
 * check hands jobs in progress to another worker), and a graceful close could hang on the same fault.
 */

/** What this needs of a logger (pino's Logger fits). */
export interface WorkerHealthLogger {
  error(fields: object, message: string): void;
}

/** What this needs of a BullMQ Worker (any Worker<Data, Result> fits). */
export interface WatchableWorker {
  readonly name: string;
  /** Set by BullMQ when close() starts. */
  readonly closing: Promise<void> | undefined;
  isRunning(): boolean;
  isPaused(): boolean;
  on(event: 'closing', listener: (msg: string) => void): unknown;
  getBackend(): { readonly client: Promise<{ status: string }>; readonly blockingClient: Promise<{ status: string }> | undefined };
}

export interface WorkerHealthOptions {
  log: WorkerHealthLogger;
  /** Exit the process (code 1) when a worker stops for good, so its supervisor restarts it. main.ts sets it; tests do not. */
  exitOnStop?: boolean;
  /** How often the workers are looked at between readiness checks (default 2 s), so a stop is noticed without a probe. */
  pollMs?: number;
  /** How long a connection must stay closed (status `end`) before it counts as closed for good (default 10 s). */
  connectionGraceMs?: number;
}

/** A worker that stopped taking jobs, and why. */
export interface WorkerStop {
  queue: string;
  reason: string;
}

interface Watched {
  worker: WatchableWorker;
  connections: { role: string; client: { status: string } }[];
  /** When each connection was first seen closed (status `end`), by role; deleted when it is open again. */
  endedSince: Map<string, number>;
  /** The stop last logged, so one stop gives one line however often it is looked at. */
  logged?: string;
}

const DEFAULT_POLL_MS = 2000;
const DEFAULT_CONNECTION_GRACE_MS = 10_000;

/**
 * Watches a service's workers. `watch()` each one right after starting it (`run()`, or autorun); put `check` in
 * the service's readiness checks; call `shuttingDown()` first thing in the service's close, so the workers
 * closing from then on are expected and not logged as a failure.
 */
export class WorkerHealth {
  readonly #options: WorkerHealthOptions;
  readonly #watched: Watched[] = [];
  #stopping = false;
  #timer: NodeJS.Timeout | undefined;

  /** Readiness check (the shape @cms/http's installHealthRoutes takes): fails naming each stopped worker's queue. */
  readonly check = {
    name: 'workers',
    check: async (): Promise<void> => {
      const stops = this.stops();
      if (stops.length > 0) throw new Error(stops.map((s) => `queue ${s.queue}: ${s.reason}`).join('; '));
    },
  };

  constructor(options: WorkerHealthOptions) {
    this.#options = options;
  }

  watch(worker: WatchableWorker): void {
    const watched: Watched = { worker, connections: [], endedSince: new Map() };
    this.#watched.push(watched);
    const backend = worker.getBackend();
    // The clients resolve once BullMQ has set them up; until then there is nothing to look at.
    void backend.client.then(
      (client) => watched.connections.push({ role: 'connection', client }),
      () => {},
    );
    void backend.blockingClient?.then(
      (client) => watched.connections.push({ role: 'blocking connection', client }),
      () => {},
    );
    // A close is final: report it at once rather than at the next poll.
    worker.on('closing', () => queueMicrotask(() => this.stops()));
    if (!this.#timer && !this.#stopping) {
      this.#timer = setInterval(() => this.stops(), this.#options.pollMs ?? DEFAULT_POLL_MS);
      // Never what keeps a process alive.
      this.#timer.unref();
    }
  }

  /** From now on workers close because the service is stopping: not a failure, not logged, no exit. */
  shuttingDown(): void {
    this.#stopping = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The workers that have stopped taking jobs now (none while the service is shutting down); logs each new stop. */
  stops(): WorkerStop[] {
    if (this.#stopping) return [];
    const stops: WorkerStop[] = [];
    for (const watched of this.#watched) {
      const reason = this.#stopReason(watched);
      if (!reason) {
        watched.logged = undefined;
        continue;
      }
      const stop = { queue: watched.worker.name, reason };
      stops.push(stop);
      if (watched.logged !== reason) {
        watched.logged = reason;
        this.#report(stop);
      }
    }
    return stops;
  }

  #stopReason(watched: Watched): string | undefined {
    const { worker } = watched;
    if (worker.closing) return 'worker closed while the service was not shutting down: it takes no more jobs';
    if (!worker.isRunning() && !worker.isPaused()) return 'worker job loop ended (run() returned or threw): it takes no more jobs';
    const now = Date.now();
    const grace = this.#options.connectionGraceMs ?? DEFAULT_CONNECTION_GRACE_MS;
    for (const { role, client } of watched.connections) {
      if (client.status !== 'end') {
        watched.endedSince.delete(role);
        continue;
      }
      const since = watched.endedSince.get(role) ?? now;
      watched.endedSince.set(role, since);
      if (now - since >= grace)
        return `worker's Redis ${role} closed for good (status end for over ${Math.round(grace / 1000)} s): it takes no jobs`;
    }
    return undefined;
  }

  #report(stop: WorkerStop): void {
    const exit = this.#options.exitOnStop === true;
    this.#options.log.error(
      { queue: stop.queue, reason: stop.reason },
      exit
        ? `worker for queue ${stop.queue} stopped: exiting so the supervisor restarts the service`
        : `worker for queue ${stop.queue} stopped`,
    );
    if (exit) process.exit(1);
  }
}
