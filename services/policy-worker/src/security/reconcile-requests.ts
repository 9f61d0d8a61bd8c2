import type { Logger } from '@cms/observability';
import { CMS_RECONCILE_QUEUE, type CmsReconcileJob, type Redis } from '@cms/queue';
import { Queue } from 'bullmq';

/**
 * Asks the actuator to re-read a node's active calls from the CMS API: after CMS discarded CDRs (a gap) or a Call
 * Bridge came up with a new session (a restart), what we know of that node's calls may be stale.
 *
 * Requests collapse the way the actuator's own do (same deduplication id per node and reason): while a pass waits,
 * more requests join it (a burst of gaps costs one pass); while one runs, one follow-up is kept, because the running
 * pass may have read the node before whatever prompted the request. A time-based throttle would drop the request of
 * a bridge that restarts shortly after an earlier pass, leaving its lost calls counted until the periodic pass.
 */
export function createReconcileRequester(connection: Redis, prefix: string, managedNodes: ReadonlySet<string>, log: Logger) {
  const queue = new Queue<CmsReconcileJob>(CMS_RECONCILE_QUEUE, { connection, prefix });
  queue.on('error', (err) => log.debug({ err: err.message }, 'queue error'));
  const request = async (node: string | null, reason: CmsReconcileJob['reason']) => {
    if (!node || !managedNodes.has(node)) return;
    try {
      await queue.add(
        'reconcile',
        { node, reason },
        {
          deduplication: { id: `reconcile-${reason}-${node}`, keepLastIfActive: true },
          // A pass that cannot finish (CMS unreachable longer than its reads retry) is tried again a few times.
          attempts: 5,
          backoff: { type: 'exponential', delay: 5000 },
          removeOnComplete: true,
          removeOnFail: 100,
        },
      );
      log.info({ node, reason }, 'reconciliation of the CMS node requested');
    } catch (err) {
      // The actuator also reconciles periodically; a missed request only delays it.
      log.warn({ node, reason, err: (err as Error).message }, 'could not request reconciliation');
    }
  };
  return Object.assign(request, { close: () => queue.close() });
}
