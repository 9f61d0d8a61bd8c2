import { randomUUID } from 'node:crypto';
import type { Logger } from '@cms/observability';
import { type CmsWriteJob, operatorActionsChannel, type Redis } from '@cms/queue';
import { type Job, RATE_LIMIT_ERROR, Worker, type WorkerOptions } from 'bullmq';
import { ACTION_HANDLERS } from './handlers.ts';

const ACTION_KINDS: ReadonlySet<string> = new Set(Object.keys(ACTION_HANDLERS));

/**
 * The lane's limiter maximum: no count of job starts in a window reaches it, only a 503 pause does (worker.rateLimit
 * sets the shared counter to Number.MAX_SAFE_INTEGER until the pause ends).
 */
const PAUSE_ONLY_MAX = 1_000_000_000;

/**
 * The node's interactive lane: takes an operator action from the node's write queue as soon as it is added, even
 * while the node's worker waits for its limiter. BullMQ's limiter counts job starts (a message job that finds nothing
 * to write counts too), so under a burst of message changes the worker can be rate-limited for most of each window,
 * and an action at the head of the queue would wait up to a window (1.1 s) for its start. The window's count does not
 * hold the lane back at all (PAUSE_ONLY_MAX; with a fixed number of extra starts, three actions in one busy window
 * used them up and the third waited for the window to turn: bench:control's p99 of 577 ms). The lane wakes only when
 * an action is added (announced on the queue's operator-actions channel by enqueueOperatorActionStep: the queue's own
 * event stream carries every message job's events too, and lagged behind them under load), takes the head of the
 * queue (actions are added there, lifo) and gives back at once a job that is not an action (when the node's worker
 * got to the action first). A 503 pause (worker.rateLimit) holds it too, and every write still passes the node's
 * write gate, so the ceiling is the same.
 */
export class InteractiveLane {
  readonly #worker: Worker<CmsWriteJob>;
  readonly #eventsConnection: Redis;
  readonly #channel: string;
  readonly #process: (job: Job<CmsWriteJob>, token: string) => Promise<void>;
  readonly #log: Logger;
  readonly #node: string;
  #draining = false;
  #again = false;
  #closed = false;

  constructor(options: {
    node: string;
    queueName: string;
    workerOptions: WorkerOptions;
    /** A connection of its own: it subscribes to the queue's operator-action announcements (libs/queue). */
    eventsConnection: Redis;
    process: (job: Job<CmsWriteJob>, token: string) => Promise<void>;
    log: Logger;
  }) {
    const { workerOptions } = options;
    this.#node = options.node;
    this.#log = options.log;
    this.#process = options.process;
    const limiter = workerOptions.limiter && { ...workerOptions.limiter, max: PAUSE_ONLY_MAX };
    this.#worker = new Worker<CmsWriteJob>(options.queueName, null, {
      ...workerOptions,
      concurrency: 1,
      autorun: false,
      ...(limiter ? { limiter } : {}),
    });
    this.#worker.on('error', (err) => this.#log.warn({ node: this.#node, err }, 'interactive lane worker error'));
    this.#eventsConnection = options.eventsConnection;
    this.#eventsConnection.on('error', (err) => this.#log.debug({ node: this.#node, err }, 'interactive lane connection error'));
    this.#channel = operatorActionsChannel(workerOptions.prefix ?? 'bull', options.queueName);
    this.#eventsConnection.on('message', (channel: string, kind: string) => {
      if (channel === this.#channel && ACTION_KINDS.has(kind)) void this.#drain();
    });
  }

  start(): void {
    this.#eventsConnection
      .subscribe(this.#channel)
      .catch((err: Error) =>
        this.#log.warn({ node: this.#node, err }, 'interactive lane not listening: the node worker takes every action'),
      );
  }

  async #drain(): Promise<void> {
    if (this.#draining) {
      this.#again = true;
      return;
    }
    this.#draining = true;
    try {
      do {
        this.#again = false;
        while (!this.#closed) {
          const token = randomUUID();
          const job = (await this.#worker.getNextJob(token, { block: false })) as Job<CmsWriteJob> | undefined;
          if (!job) break; // nothing waiting, or the limiter says wait: the node's worker takes it then
          if (!ACTION_KINDS.has(job.data.kind)) {
            // The node's worker took the action first and this is a message write: back to the head of the wait list
            // for the node's worker. Run here, it would wait at the write gate (up to a window) and the next action
            // announced meanwhile would wait behind it.
            await job.moveToWait(token);
            break;
          }
          if (!(await this.#run(job, token))) break;
        }
      } while (this.#again && !this.#closed);
    } catch (err) {
      this.#log.warn({ node: this.#node, err }, 'interactive lane could not take a job: the node worker will');
    } finally {
      this.#draining = false;
    }
  }

  /**
   * Runs one job the way BullMQ's worker does: completed, or back to wait (rate limit), delayed, or failed (retries).
   * False when CMS asked to wait (503, held credentials): the lane stops, the node's worker carries on after the pause.
   */
  async #run(job: Job<CmsWriteJob>, token: string): Promise<boolean> {
    try {
      await this.#process(job, token);
      await job.moveToCompleted(undefined, token, false);
      return true;
    } catch (err) {
      const error = err as Error;
      if (error.message === RATE_LIMIT_ERROR) {
        await job.moveToWait(token);
        return false;
      }
      if (error.name !== 'DelayedError') await job.moveToFailed(error, token, false); // delayed: the handler moved it
      return true;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#eventsConnection.disconnect();
    await this.#worker.close();
  }
}
