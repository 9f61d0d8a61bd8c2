import { type Database, operatorActionSteps, operatorActions } from '@cms/db';
import type { Logger } from '@cms/observability';
import { enqueueOperatorActionStep, type OperatorActionJobKind, operatorActionJobId, type Redis } from '@cms/queue';
import { and, asc, eq, inArray, isNull, lt, sql } from 'drizzle-orm';
import type { NodeWriter } from '../node-writer.ts';

export interface ActionSweepDeps {
  db: Database;
  writers: ReadonlyMap<string, NodeWriter>;
  log: Logger;
  /** Announces a queued step to the node's interactive lane. */
  redis: Redis;
  /** Actions younger than this are left to the job the records API queues right after storing them. */
  minAgeMs: number;
  batchSize: number;
}

/**
 * The records API stores an action, then queues one job per step: a crash (or Redis refusing) in between leaves
 * steps `queued` that no job points at, and the operator's action would wait for ever. Such steps, older than
 * `minAgeMs`, get their job here. Only steps no handler ever started are queued again: a step that started may have
 * reached CMS (a dial-out must never be sent twice), and its job is BullMQ's to retry. Queueing is safe against a
 * job that exists meanwhile: the job id is per step, so a second add adds nothing.
 */
export async function sweepUnqueuedActions(deps: ActionSweepDeps): Promise<number> {
  const { db, writers, log } = deps;
  if (!writers.size) return 0;
  const rows = await db
    .select({
      actionId: operatorActionSteps.actionId,
      step: operatorActionSteps.step,
      node: operatorActionSteps.node,
      kind: operatorActions.kind,
    })
    .from(operatorActionSteps)
    .innerJoin(operatorActions, eq(operatorActions.id, operatorActionSteps.actionId))
    .where(
      and(
        eq(operatorActions.status, 'queued'),
        eq(operatorActionSteps.status, 'queued'),
        isNull(operatorActionSteps.startedAt),
        lt(operatorActions.createdAt, sql`now() - make_interval(secs => ${deps.minAgeMs / 1000})`),
        inArray(operatorActionSteps.node, [...writers.keys()]),
      ),
    )
    .orderBy(asc(operatorActionSteps.actionId), asc(operatorActionSteps.step))
    .limit(deps.batchSize);
  let queued = 0;
  for (const row of rows) {
    const writer = writers.get(row.node) as NodeWriter;
    const job = { kind: row.kind as OperatorActionJobKind, actionId: row.actionId, step: row.step };
    if (await writer.queue.getJob(operatorActionJobId(job))) continue; // waiting, delayed or held with its node
    await enqueueOperatorActionStep(writer.queue, job, deps.redis);
    queued++;
    log.warn({ node: row.node, actionId: row.actionId, step: row.step, kind: row.kind }, 'operator action step had no write job: queued');
  }
  return queued;
}
