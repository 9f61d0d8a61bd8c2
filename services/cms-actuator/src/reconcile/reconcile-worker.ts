import type { Logger } from '@cms/observability';
import {
  CMS_RECONCILE_QUEUE,
  type CmsReconcileJob,
  type CmsReconcileQueue,
  createCmsReconcileQueue,
  type Redis,
  requestReconcile,
} from '@cms/queue';
import { Worker } from 'bullmq';
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

/**
 * Takes reconciliation requests (CMS_RECONCILE_QUEUE: the policy worker's after a CDR gap or a new bridge session,
 * ours at start-up and every `intervalSeconds`) and runs each as a pass of its node. Requests go through the queue
 * even when they come from this process, so however many replicas run, a node gets one pass per request and one
 * periodic pass per interval.
 */
export class ReconcileWorker {
  readonly queue: CmsReconcileQueue;
  readonly worker: Worker<CmsReconcileJob>;
  readonly #d: ReconcileWorkerDeps;
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: ReconcileWorkerDeps) {
    const { redis, prefix, log, reconcilers } = deps;
    this.#d = deps;
    this.queue = createCmsReconcileQueue({ connection: redis, prefix });
    this.queue.on('error', (err) => log.debug({ err }, 'reconcile queue error'));
    this.worker = new Worker<CmsReconcileJob>(CMS_RECONCILE_QUEUE, (job) => this.#process(job.data), {
      connection: redis,
      prefix,
      // Nodes are reconciled side by side; passes of one node queue behind each other in NodeReconciler.
      concurrency: Math.max(1, reconcilers.size),
      autorun: false,
    });
    this.worker.on('error', (err) => log.warn({ err }, 'reconcile worker error'));
  }

  /** Takes requests, asks for a pass of every node now, and every interval. */
  start(): void {
    const { log, intervalSeconds, reconcilers } = this.#d;
    void this.worker.run().catch((err: Error) => log.error({ err }, 'reconcile worker stopped'));
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
   * Queues a pass of `node` (`requestReconcile`, libs/queue, says how requests collapse). Periodic requests are
   * taken by one replica per interval (a Redis key all replicas race for).
   */
  async request(node: string, reason: CmsReconcileJob['reason']): Promise<void> {
    const { redis, prefix, intervalSeconds, log } = this.#d;
    try {
      if (reason === 'periodic') {
        const periodMs = Math.max(1000, intervalSeconds * 1000 - 1000);
        const mine = await redis.set(`${prefix}:cms-reconcile-periodic:${node}`, '1', 'PX', periodMs, 'NX');
        if (mine !== 'OK') return;
      }
      await requestReconcile(this.queue, node, reason);
    } catch (err) {
      // The next periodic request (or the policy worker's) brings the pass; nothing is lost but time.
      log.warn({ node, reason, err }, 'could not queue a reconciliation pass');
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
