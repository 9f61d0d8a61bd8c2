import type { Database } from '@cms/db';
import type { Logger } from '@cms/observability';
import { callMessageDeduplicationId, enqueueCallMessageWrite } from '@cms/queue';
import { sql } from 'drizzle-orm';
import type { ActuatorMetrics } from '../metrics.ts';
import type { NodeWriter } from '../node-writer.ts';

export interface PendingSweepDeps {
  db: Database;
  writers: ReadonlyMap<string, NodeWriter>;
  log: Logger;
  metrics: ActuatorMetrics;
  /** Pending rows younger than this are left to the job their producer queued. */
  minAgeMs: number;
  batchSize: number;
}

/**
 * Producers commit the desired state first and queue its write job after: one that crashed (or lost Redis) in
 * between leaves a 'pending' row no job points at. Such rows, older than `minAgeMs`, get their job here. A row whose
 * job still exists (waiting, delayed, held with its node) is left alone; queueing anyway would be harmless, as jobs
 * are deduplicated per call.
 */
export async function sweepPending(deps: PendingSweepDeps): Promise<number> {
  const { db, writers, log, metrics } = deps;
  if (!writers.size) return 0;
  const { rows } = await db.execute<{ callId: string; node: string }>(
    sql`SELECT call_id AS "callId", node FROM call_messages
        WHERE status = 'pending' AND desired_at < now() - make_interval(secs => ${deps.minAgeMs / 1000})
          AND node IN (SELECT jsonb_array_elements_text(${JSON.stringify([...writers.keys()])}::jsonb))
        ORDER BY desired_at LIMIT ${deps.batchSize}`,
  );
  let queued = 0;
  for (const { callId, node } of rows) {
    const writer = writers.get(node) as NodeWriter;
    if (await writer.queue.getDeduplicationJobId(callMessageDeduplicationId(callId))) continue;
    await enqueueCallMessageWrite(writer.queue, callId);
    metrics.sweepEnqueued.inc({ node });
    queued++;
    log.info({ node, callId }, 'pending desired message had no write job: queued');
  }
  return queued;
}
