import { CmsApiError, CmsClient } from '@cms/cms';
import type { CmsNodeConfig } from '@cms/config';
import type { Database } from '@cms/db';
import type { Logger } from '@cms/observability';
import {
  CMS_WRITE_BACKOFF_TYPE,
  type CmsWriteJob,
  type CmsWritesQueue,
  cappedExponentialDelay,
  createCmsWritesQueue,
  enqueueOperatorActionStep,
  type OperatorActionJob,
  type Redis,
} from '@cms/queue';
import { type Job, UnrecoverableError, Worker, type WorkerOptions } from 'bullmq';
import { ACTION_HANDLERS } from './actions/handlers.ts';
import { InteractiveLane } from './actions/interactive-lane.ts';
import { BusyBackoff } from './busy-backoff.ts';
import { insertWriteRecord } from './desired-state.ts';
import type { ActuatorMetrics } from './metrics.ts';
import { NodeHealth } from './node-health.ts';
import { RequestGate, writeCeiling } from './request-gate.ts';
import type { ActuatorTuning } from './tuning.ts';
import { writeCallMessage } from './write-call-message.ts';
import type { PeerWriter, WriteContext, WriteOutcome } from './write-context.ts';

/** Exactly one handler per job kind; the compiler checks the table covers CmsWriteJob. */
const HANDLERS: { [K in CmsWriteJob['kind']]: (ctx: WriteContext, job: Job<CmsWriteJob>, token: string | undefined) => Promise<void> } = {
  callMessage: writeCallMessage,
  ...ACTION_HANDLERS,
};

export interface NodeWriterDeps {
  node: CmsNodeConfig;
  db: Database;
  redis: Redis;
  prefix: string;
  log: Logger;
  metrics: ActuatorMetrics;
  tuning: ActuatorTuning;
  /** The policy's message texts and the level each shows (write-call-message.ts levelsOfMessageTexts). */
  messageLevels: ReadonlyMap<string, number>;
  /** Every node's writer, by name: an operator action step is handed over to the one hosting its participant. */
  peers?: ReadonlyMap<string, PeerWriter>;
}

const LOG_LEVEL: Record<WriteOutcome['status'], 'info' | 'warn' | 'error'> = {
  applied: 'info',
  unchanged: 'info',
  callEnded: 'info',
  retrying: 'warn',
  held: 'warn',
  deadLettered: 'error',
};

/**
 * Everything that writes to one CMS node: its API client, its queue and BullMQ worker, the write ceiling, the 503
 * back-off and the node's health. Replicas each run one per node; the queue, the limiter and the write gate live
 * in Redis, so the ceiling holds however many replicas run.
 */
export class NodeWriter implements PeerWriter {
  readonly name: string;
  readonly callBridgeId: string | undefined;
  readonly client: CmsClient;
  readonly queue: CmsWritesQueue;
  readonly worker: Worker<CmsWriteJob>;
  readonly health: NodeHealth;
  readonly #deps: NodeWriterDeps;
  readonly #ctx: WriteContext;
  /** Takes operator actions while the worker waits for its limiter (actions/interactive-lane.ts). */
  readonly #lane: InteractiveLane;
  #depthTimer: NodeJS.Timeout | undefined;
  #depthBusy = false;

  constructor(deps: NodeWriterDeps) {
    const { node, redis, prefix, log, metrics, tuning } = deps;
    this.#deps = deps;
    this.name = node.name;
    this.callBridgeId = node.callBridgeId;
    this.client = new CmsClient(node, { connectTimeoutMs: tuning.connectTimeoutMs, requestTimeoutMs: tuning.requestTimeoutMs });
    this.queue = createCmsWritesQueue(node.name, { connection: redis, prefix });
    const ceiling = writeCeiling(node.maxWritesPerSecond);
    const gate = new RequestGate(
      redis,
      `${prefix}:cms-write-gate:${node.name}`,
      ceiling,
      tuning.writeWindowMarginMs,
      tuning.requestTimeoutMs,
      // Never the only place: a ceiling of one write per window keeps it for messages (an action then goes next).
      Math.min(tuning.interactiveReservedWrites, ceiling.limit - 1),
    );
    const workerOptions: WorkerOptions = {
      connection: redis,
      prefix,
      concurrency: tuning.concurrency,
      autorun: false,
      // BullMQ's limiter is kept in Redis per queue, so it paces every replica together, and it is what a 503
      // pauses (rateLimit). It keeps a backlog from starting jobs (and reading their desired state) long before the
      // ceiling lets them write; the write gate, a sliding window checked right before each PUT, is what keeps CMS
      // below the ceiling. A job start is not always a write — a re-run after the interval's delay, a follow-up with
      // nothing left to do, a call that already shows its message or has ended — so 2N starts per window: with N,
      // those used up the window while the ceiling still had room (a second's wait, measured). Nor one start per
      // 1/N s: that spacing held back changes that came together (a meeting's first joins on a bridge) although
      // the ceiling allowed them at once (measured, bench/results/policy.md).
      limiter: { max: 2 * ceiling.limit, duration: ceiling.windowMs + tuning.writeWindowMarginMs },
      lockDuration: tuning.lockDurationMs,
      stalledInterval: tuning.stalledIntervalMs,
      // A replica dying mid-write is not the write's fault: let others take the job over several times.
      maxStalledCount: 10,
      maximumRateLimitDelay: tuning.busyMaxDelayMs,
      settings: {
        backoffStrategy: (attemptsMade: number, type?: string) =>
          type === CMS_WRITE_BACKOFF_TYPE ? cappedExponentialDelay(attemptsMade, tuning.retryBaseDelayMs, tuning.retryMaxDelayMs) : 0,
      },
    };
    this.worker = new Worker<CmsWriteJob>(this.queue.name, (job, token) => this.#process(job, token), workerOptions);
    this.#lane = new InteractiveLane({
      node: node.name,
      queueName: this.queue.name,
      workerOptions,
      eventsConnection: redis.duplicate(),
      process: (job, token) => this.#process(job, token),
      log,
    });
    this.worker.on('error', (err) => log.warn({ node: node.name, err }, 'cms write worker error'));
    this.worker.on('failed', (job, err) => {
      // CMS outcomes were logged as they were recorded; anything else (Postgres down, ...) is logged here.
      if (err instanceof CmsApiError || err instanceof UnrecoverableError) return;
      log.warn({ node: node.name, jobId: job?.id, attempt: job?.attemptsMade, err }, 'cms write job failed: will retry');
    });
    this.health = new NodeHealth({
      client: this.client,
      log,
      gauge: metrics.nodeHealthy,
      probeIntervalMs: tuning.healthProbeIntervalMs,
      hold: () => this.worker.pause(true),
      resume: () => this.worker.resume(),
    });
    this.#ctx = {
      node: node.name,
      db: deps.db,
      client: this.client,
      gate,
      health: this.health,
      busy: new BusyBackoff(tuning.busyInitialDelayMs, tuning.busyMaxDelayMs),
      queue: this.queue,
      log,
      callMessageMinIntervalMs: tuning.callMessageMinIntervalMs,
      messageLevels: deps.messageLevels,
      lastAnswers: new Map(),
      peers: () => deps.peers ?? new Map([[this.name, this]]),
      rateLimit: (ms) => this.worker.rateLimit(ms),
      record: (kind, outcome) => this.#record(kind, outcome),
    };
  }

  /** Queues an operator action step here, and wakes this node's interactive lane. */
  async enqueueAction(job: OperatorActionJob): Promise<void> {
    await enqueueOperatorActionStep(this.queue, job, this.#deps.redis);
  }

  /** Starts taking jobs, the health probe and the queue-depth gauge. */
  start(): void {
    const { log, tuning } = this.#deps;
    void this.worker.run().catch((err: Error) => log.error({ node: this.name, err }, 'cms write worker stopped'));
    this.#lane.start();
    void this.health.checkOnce();
    this.#depthTimer = setInterval(() => void this.refreshQueueDepth(), tuning.queueDepthIntervalMs);
    this.#depthTimer.unref();
    void this.refreshQueueDepth();
  }

  async refreshQueueDepth(): Promise<void> {
    if (this.#depthBusy) return;
    this.#depthBusy = true;
    try {
      const counts = await this.queue.getJobCounts('wait', 'delayed', 'prioritized');
      const depth = Object.values(counts).reduce((sum, n) => sum + n, 0);
      this.#deps.metrics.queueDepth.set({ node: this.name }, depth);
    } catch (err) {
      this.#deps.log.debug({ node: this.name, err }, 'queue depth not refreshed');
    } finally {
      this.#depthBusy = false;
    }
  }

  /** Stops taking jobs; jobs in hand finish (or go back to the queue if their CMS request fails). */
  async close(): Promise<void> {
    clearInterval(this.#depthTimer);
    this.health.stop();
    await this.#lane.close();
    await this.worker.close();
    await this.queue.close();
    await this.client.close();
  }

  async #process(job: Job<CmsWriteJob>, token: string | undefined): Promise<void> {
    const handler = HANDLERS[job.data.kind];
    if (!handler) {
      this.#deps.log.error({ node: this.name, jobId: job.id, kind: job.data.kind }, 'CMS write job of an unknown kind: failed');
      throw new UnrecoverableError(`no handler for CMS write kind ${String(job.data.kind)}`);
    }
    await handler(this.#ctx, job, token);
  }

  async #record(kind: CmsWriteJob['kind'], outcome: WriteOutcome): Promise<void> {
    const { metricOutcome, ...fields } = outcome;
    const record = { node: this.name, kind, ...fields };
    await insertWriteRecord(this.#deps.db, record);
    this.#deps.metrics.writes.inc({ node: this.name, outcome: metricOutcome ?? outcome.status });
    if (outcome.latencyMs !== null) this.#deps.metrics.writeSeconds.observe({ node: this.name }, outcome.latencyMs / 1000);
    this.#deps.log[LOG_LEVEL[outcome.status]](record, 'cms write');
  }
}
