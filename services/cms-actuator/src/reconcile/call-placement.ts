import { CmsApiError, type CmsCall, type CmsValue } from '@cms/cms';
import { type Database, lockMeetingsOfCalls } from '@cms/db';
import type { Logger } from '@cms/observability';
import { enqueueCallMessageWrite, type Redis } from '@cms/queue';
import { sql } from 'drizzle-orm';
import type { ActuatorMetrics } from '../metrics.ts';
import type { NodeWriter } from '../node-writer.ts';
import type { NodeReconciler, RecomputeRequest } from './node-reconciler.ts';
import { ReadsAbortedError } from './paced-read-client.ts';

/** How long a node's answer about a call is remembered: longer than any meeting lasts. */
const PLACEMENT_MEMORY_SECONDS = 24 * 3600;

type PlacementAnswer = 'found' | 'absent';

export interface PlacementDeps {
  db: Database;
  redis: Redis;
  prefix: string;
  writers: ReadonlyMap<string, NodeWriter>;
  reconcilers: ReadonlyMap<string, NodeReconciler>;
  log: Logger;
  metrics: ActuatorMetrics;
  requestRecompute: RecomputeRequest;
  batchSize: number;
}

/** The Redis hash remembering, per node, whether it knew the call (`found` / `absent`). */
export function placementKey(prefix: string, callId: string): string {
  return `${prefix}:cms-placement:${callId}`;
}

/**
 * Calls whose node nobody could tell (CDRs posted to /cdr with a callBridge that maps to no configured node) have
 * their desired message parked as 'unplaced'. Each configured node is asked GET /api/v1/calls/<id> once; the answers
 * are remembered in Redis (shared by replicas, kept a day), so a call no node knows costs one read per node, not
 * one per sweep. A node that knows the call becomes the call's node and the write is queued there. Periodic
 * reconciliation places such calls too, when it lists them.
 */
export async function placeUnplacedCalls(deps: PlacementDeps): Promise<number> {
  const { db, redis, prefix, reconcilers, log, metrics } = deps;
  if (!reconcilers.size) return 0;
  const { rows } = await db.execute<{ callId: string }>(
    sql`SELECT m.call_id AS "callId" FROM call_messages m LEFT JOIN calls c ON c.id = m.call_id
        WHERE m.status = 'unplaced' AND c.ended_at IS NULL ORDER BY m.desired_at LIMIT ${deps.batchSize}`,
  );
  let placed = 0;
  for (const { callId } of rows) {
    const key = placementKey(prefix, callId);
    const answers = (await redis.hgetall(key)) as Record<string, PlacementAnswer>;
    let host = Object.entries(answers).find(([node, answer]) => answer === 'found' && reconcilers.has(node))?.[0];
    let detail: CmsCall | undefined;
    for (const reconciler of reconcilers.values()) {
      if (host) break;
      if (answers[reconciler.name] || !reconciler.healthy || reconciler.closing) continue;
      try {
        detail = await reconciler.client.getCall(callId);
        host = reconciler.name;
      } catch (err) {
        if (err instanceof ReadsAbortedError) return placed;
        if (!(err instanceof CmsApiError) || !err.isNotFound) {
          // Not an answer (busy, down, refused): ask again next sweep.
          metrics.placementLookups.inc({ node: reconciler.name, outcome: 'failed' });
          log.debug({ node: reconciler.name, callId, err }, 'could not ask the CMS node about a call');
          continue;
        }
        metrics.placementLookups.inc({ node: reconciler.name, outcome: 'absent' });
        await redis.multi().hset(key, reconciler.name, 'absent').expire(key, PLACEMENT_MEMORY_SECONDS).exec();
      }
    }
    if (!host) continue;
    if (detail) metrics.placementLookups.inc({ node: host, outcome: 'found' });
    if (await placeCall(deps, callId, host, detail)) placed++;
    await redis.multi().hset(key, host, 'found').expire(key, PLACEMENT_MEMORY_SECONDS).exec();
  }
  return placed;
}

/** The call's node is now known: the call and its desired message move there, and the write is queued. */
async function placeCall(deps: PlacementDeps, callId: string, node: string, detail: CmsCall | undefined): Promise<boolean> {
  const { db, writers, log } = deps;
  const moved = await db.transaction(async (tx) => {
    // The callCorrelator filled in here moves the call's level copy to its meeting's: under the meetings' locks, as
    // every writer of call rows (@cms/db lockMeetingsOfCalls).
    const callCorrelator = text(detail?.callCorrelator);
    await lockMeetingsOfCalls(tx, [callId], callCorrelator ? [callCorrelator] : []);
    await tx.execute(
      sql`UPDATE calls SET node = coalesce(node, ${node}), name = coalesce(name, ${text(detail?.name)}),
            co_space = coalesce(co_space, ${text(detail?.coSpace)}), call_correlator = coalesce(call_correlator, ${callCorrelator}),
            updated_at = now()
          WHERE id = ${callId}`,
    );
    const { rowCount } = await tx.execute(
      sql`UPDATE call_messages SET node = ${node}, status = 'pending' WHERE call_id = ${callId} AND status = 'unplaced'`,
    );
    return (rowCount ?? 0) > 0;
  });
  if (!moved) return false;
  const writer = writers.get(node);
  if (writer) await enqueueCallMessageWrite(writer.queue, callId);
  // A callCorrelator learnt just now can join the call to its meeting's other instances: let the policy look again.
  await deps.requestRecompute([callId], 'placement');
  log.info({ node, callId }, 'call of unknown node found on a CMS node: its message is queued there');
  return true;
}

function text(value: CmsValue | undefined): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}
