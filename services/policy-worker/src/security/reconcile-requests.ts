import type { Logger } from '@cms/observability';
import { type CmsReconcileJob, createCmsReconcileQueue, type Redis, requestReconcile } from '@cms/queue';

/**
 * Asks the actuator to re-read a node's active calls from the CMS API: after CMS discarded CDRs (a gap) or a Call
 * Bridge came up with a new session (a restart), what we know of that node's calls may be stale. Requests collapse
 * the way the actuator's own do (`requestReconcile`, libs/queue): a burst of gaps costs one pass, and a request made
 * while a pass runs is kept for after it.
 */
export function createReconcileRequester(connection: Redis, prefix: string, managedNodes: ReadonlySet<string>, log: Logger) {
  const queue = createCmsReconcileQueue({ connection, prefix });
  queue.on('error', (err) => log.debug({ err }, 'queue error'));
  const request = async (node: string | null, reason: CmsReconcileJob['reason']) => {
    if (!node || !managedNodes.has(node)) return;
    try {
      await requestReconcile(queue, node, reason);
      log.info({ node, reason }, 'reconciliation of the CMS node requested');
    } catch (err) {
      // The actuator also reconciles periodically; a missed request only delays it.
      log.warn({ node, reason, err }, 'could not request reconciliation');
    }
  };
  return Object.assign(request, { close: () => queue.close() });
}
