import type { Logger } from '@cms/observability';
import { CMS_RECONCILE_QUEUE, type CmsReconcileJob, type Redis } from '@cms/queue';
import { Queue } from 'bullmq';

/** Requests of one node within this window collapse into one reconciliation (a burst of gaps costs one pass). */
const RECONCILE_DEDUP_MS = 30_000;

/**
 * Asks the actuator to re-read a node's active calls from the CMS API: after CMS discarded CDRs (a gap) or a Call
 * Bridge came up with a new session (a restart), what we know of that node's calls may be stale.
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
        { deduplication: { id: `reconcile-${node}`, ttl: RECONCILE_DEDUP_MS }, removeOnComplete: true, removeOnFail: 100 },
      );
      log.info({ node, reason }, 'reconciliation of the CMS node requested');
    } catch (err) {
      // The actuator also reconciles periodically; a missed request only delays it.
      log.warn({ node, reason, err: (err as Error).message }, 'could not request reconciliation');
    }
  };
  return Object.assign(request, { close: () => queue.close() });
}
