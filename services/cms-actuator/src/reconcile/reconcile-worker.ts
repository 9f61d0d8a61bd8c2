import type { Logger } from '@cms/observability';
import { CMS_RECONCILE_QUEUE, type CmsReconcileJob, type Redis } from '@cms/queue';
import { type JobsOptions, Queue, Worker } from 'bullmq';
import type { ActuatorMetrics } from '../metrics.ts';
import type { NodeReconciler } from './node-reconciler.ts';

export interface ReconcileWorkerDeps {
  reconcilers: ReadonlyMap<string, NodeReconciler>;
  redis: Redis;
  prefix: string;
  log: Logger;
  metrics: ActuatorMetrics;
  /** actuator.reconcileIntervalSeconds; 0 = no periodic passes. */
  intervalSeconds: number;
}

/** A pass that could not finish (CMS unreachable for longer than a read's retries) is tried again a few times. */
const JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 5000 },
  removeOnComplete: true,
  removeOnFail: 100,
};

/** Start-up requests of replicas starting together collapse into one pass per node. */
const STARTUP_DEDUP_MS = 10_000;

/**
 * Takes reconciliation requests (CMS_RECONCILE_QUEUE: the policy worker's after a CDR gap or a new bridge session,
 * ours at start-up and every `intervalSeconds`) and runs each as a pass of its node. Requests go through the queue
 * even when they come from this process, so however many replicas run, a node gets one pass per request and one
 * periodic pass per interval.
 */
export class ReconcileWorker {
  readonly queue: Queue<CmsReconcileJob>;
  readonly worker: Worker<CmsReconcileJob>;
  readonly #d: ReconcileWorkerDeps;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: ReconcileWorkerDeps) {
    const { redis, prefix, log, reconcilers } = deps;
    this.#d = deps;
    this.queue = new Queue<CmsReconcileJob>(CMS_RECONCILE_QUEUE, { connection: redis, prefix });
    this.queue.on('error', (err) => log.debug({ err: err.message }, 'reconcile queue error'));
    this.worker = new Worker<CmsReconcileJob>(CMS_RECONCILE_QUEUE, (job) => this.#process(job.data), {
      connection: redis,
      prefix,
      // Nodes are reconciled side by side; passes of one node queue behind each other in NodeReconciler.
      concurrency: Math.max(1, reconcilers.size),
      autorun: false,
    });
    this.worker.on('error', (err) => log.warn({ err: err.message }, 'reconcile worker error'));
  }

  /** Takes requests, asks for a pass of every node now, and every interval. */
  start(): void {
    const { log, intervalSeconds, reconcilers } = this.#d;
    void this.worker.run().catch((err: Error) => log.error({ err: err.message }, 'reconcile worker stopped'));
    for (const [node, reconciler] of reconcilers) {
      void this.request(node, 'startup');
      // While a node refused us its passes were skipped: catch up as soon as it accepts us again.
      reconciler.onRecovered(() => void this.request(node, 'nodeRecovered'));
    }
    if (intervalSeconds > 0) {
      this.#timer = setInterval(() => {
        for (const node of reconcilers.keys()) void this.request(node, 'periodic');
      }, intervalSeconds * 1000);
      this.#timer.unref();
    }
  }

  /**
   * Queues a pass of `node`. A request for a node that already has one waiting joins it; one made while a pass runs
   * is kept and runs after it (the running pass may have read before whatever prompted the request). Start-up
   * requests of replicas starting together collapse into one pass; periodic ones are taken by one replica per
   * interval (a Redis key all replicas race for).
   */
  async request(node: string, reason: CmsReconcileJob['reason']): Promise<void> {
    const { redis, prefix, intervalSeconds, log } = this.#d;
    try {
      if (reason === 'periodic') {
        const periodMs = Math.max(1000, intervalSeconds * 1000 - 1000);
        const mine = await redis.set(`${prefix}:cms-reconcile-periodic:${node}`, '1', 'PX', periodMs, 'NX');
        if (mine !== 'OK') return;
      }
      const deduplication =
        reason === 'startup'
          ? { id: `reconcile-startup-${node}`, ttl: STARTUP_DEDUP_MS }
          : { id: `reconcile-${reason}-${node}`, keepLastIfActive: true };
      await this.queue.add('reconcile', { node, reason }, { ...JOB_OPTIONS, deduplication });
    } catch (err) {
      // The next periodic request (or the policy worker's) brings the pass; nothing is lost but time.
      log.warn({ node, reason, err: (err as Error).message }, 'could not queue a reconciliation pass');
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.worker.close();
    await this.queue.close();
  }

  async #process(job: CmsReconcileJob): Promise<void> {
    const reconciler = this.#d.reconcilers.get(job.node);
    if (!reconciler) {
      // A node removed from cms.nodes, or a producer configured with more nodes than we are: nothing to read.
      this.#d.log.warn({ node: job.node, reason: job.reason }, 'reconciliation requested for a CMS node not in cms.nodes: ignored');
      this.#d.metrics.reconcilePasses.inc({ node: job.node, outcome: 'unknownNode' });
      return;
    }
    await reconciler.runPass(job.reason);
  }
}
