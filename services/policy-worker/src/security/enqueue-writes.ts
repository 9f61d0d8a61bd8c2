import type { Logger } from '@cms/observability';
import type { MessageWrite } from '@cms/policy';
import { type CmsWritesQueue, createCmsWritesQueue, enqueueCallMessageWrite, type Redis } from '@cms/queue';
import type { WorkerMetrics } from '../metrics.ts';

/**
 * Hands committed desired-state changes to the actuator, one queue per CMS node. A failure here is logged and
 * counted but never fails the batch: the desired state is already committed as 'pending', and the actuator's
 * sweep of pending messages writes it anyway.
 */
export function createWriteEnqueuer(connection: Redis, prefix: string, log: Logger, metrics: WorkerMetrics) {
  const queues = new Map<string, CmsWritesQueue>();
  const queueFor = (node: string) => {
    let queue = queues.get(node);
    if (!queue) {
      queue = createCmsWritesQueue(node, { connection, prefix });
      queue.on('error', (err) => log.debug({ err, node }, 'queue error'));
      queues.set(node, queue);
    }
    return queue;
  };
  const enqueue = async (writes: readonly MessageWrite[]) => {
    await Promise.all(
      writes.map(async (write) => {
        try {
          await enqueueCallMessageWrite(queueFor(write.node), write.callId);
          metrics.writesEnqueued.inc({ node: write.node });
        } catch (err) {
          metrics.enqueueFailures.inc();
          log.warn({ callId: write.callId, node: write.node, err }, 'could not queue CMS write; the actuator sweep will apply it');
        }
      }),
    );
  };
  return Object.assign(enqueue, {
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  });
}
