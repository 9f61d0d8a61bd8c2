import { type CmsCall, callShowsMessage, type DesiredCallMessage, isClearMessage } from '@cms/cms';
import type { Database } from '@cms/db';
import { sql } from 'drizzle-orm';
import type { ObservedCall } from './observe-node.ts';

interface DesiredOnCall extends DesiredCallMessage {
  callId: string;
  node: string | null;
  status: string;
  version: number;
  /** Written after the pass read the call: what the pass saw is older than the write. */
  appliedSincePass: boolean;
}

export interface MessageReconciliation {
  /** Calls whose write job must be queued on this node. */
  enqueue: string[];
  /** Desired messages CMS did not show, set pending again. */
  reapplied: number;
  /** Calls of unknown node that this node turned out to host. */
  placed: number;
}

/**
 * Statuses that say "CMS showed it": a call that does not show it any more gets a new version. A dead-lettered
 * write is not retried here: nothing retries for ever, it waits in the failed set for an operator.
 */
const SETTLED = new Set(['applied', 'unchanged']);

/**
 * Compares each listed call's desired message with what CMS showed and queues what must be written. The decision of
 * what to show stays the policy worker's; this only makes sure CMS shows it:
 * - a settled message CMS no longer shows (the bridge restarted, someone cleared or replaced it) gets a new version
 *   (the write job skips versions it already applied) and a job;
 * - a pending message gets a job (harmless if one exists: jobs are deduplicated per call);
 * - a call of unknown node ('unplaced') that this node lists is placed here and queued.
 */
export async function reconcileMessages(
  db: Database,
  node: string,
  observed: readonly ObservedCall[],
  passStartedAt: string,
  ourTexts: ReadonlySet<string>,
): Promise<MessageReconciliation> {
  const result: MessageReconciliation = { enqueue: [], reapplied: 0, placed: 0 };
  if (!observed.length) return result;
  const shown = new Map(observed.map((c) => [c.id, c.detail]));
  const { rows } = await db.execute<Omit<DesiredOnCall, 'version'> & { version: string }>(
    sql`SELECT m.call_id AS "callId", m.node, m.status, m.message_text AS "messageText", m.message_position AS "messagePosition",
               m.message_duration AS "messageDuration", m.version,
               (m.applied_at IS NOT NULL AND m.applied_at >= ${passStartedAt}::timestamptz) AS "appliedSincePass"
        FROM call_messages m JOIN calls c ON c.id = m.call_id
        WHERE m.call_id IN (SELECT jsonb_array_elements_text(${JSON.stringify([...shown.keys()])}::jsonb)) AND c.ended_at IS NULL
        ORDER BY m.call_id`,
  );
  for (const raw of rows) {
    const desired: DesiredOnCall = { ...raw, version: Number(raw.version) };
    const call = shown.get(desired.callId) as CmsCall;
    if (desired.status === 'unplaced') {
      const { rowCount } = await db.execute(
        sql`UPDATE call_messages SET node = ${node}, status = 'pending' WHERE call_id = ${desired.callId} AND status = 'unplaced'`,
      );
      if (rowCount) {
        result.placed++;
        result.enqueue.push(desired.callId);
      }
      continue;
    }
    if (desired.node !== node) continue;
    if (desired.status === 'pending') {
      result.enqueue.push(desired.callId);
      continue;
    }
    if (!SETTLED.has(desired.status) || desired.appliedSincePass || !mustShowAgain(call, desired, ourTexts)) continue;
    // Compare-and-set: a newer desired state (the policy recomputing right now) wins and brings its own job.
    const { rowCount } = await db.execute(
      sql`UPDATE call_messages SET version = version + 1, status = 'pending', desired_at = now()
          WHERE call_id = ${desired.callId} AND version = ${desired.version} AND status = ${desired.status}`,
    );
    if (rowCount) {
      result.reapplied++;
      result.enqueue.push(desired.callId);
    }
  }
  return result;
}

/**
 * Whether CMS must be written again. A permanent message must always show. A timed one was shown for its time
 * already: showing it again every pass would be wrong. A clear is re-applied only over a message of ours (one of
 * policy.messages): a message an operator put up on a meeting we leave blank is theirs.
 */
function mustShowAgain(call: CmsCall, desired: DesiredCallMessage, ourTexts: ReadonlySet<string>): boolean {
  if (callShowsMessage(call, desired)) return false;
  if (isClearMessage(desired)) return ourTexts.has(call.messageText ?? '');
  return desired.messageDuration.trim() === 'permanent';
}
