import { calls, lockMeetingsOfCalls, recordset } from '@cms/db';
import { getTableColumns, sql } from 'drizzle-orm';
import type { Tx } from '../transaction.ts';
import { type CallRow, callPatch, mergeCallPatches } from './call-patch.ts';
import { conflictSet } from './conflict-set.ts';
import type { BatchRecord } from './records.ts';

// `level` is the meeting's, copied by triggers (migration 0011): never written here.
const NOT_WRITTEN = ['updatedAt', 'level'];
const CALL_KEYS = (Object.keys(getTableColumns(calls)) as (keyof typeof calls.$inferInsert & string)[]).filter(
  (k) => !NOT_WRITTEN.includes(k),
);
const CALL_COLUMNS = recordset(calls, CALL_KEYS);
// Calls keep the first non-null value of each field (call-patch.ts: the order records arrive in does not matter).
const CALL_FILL_NULLS = conflictSet(calls, ['id', ...NOT_WRITTEN], (c) => `coalesce("calls"."${c}", excluded."${c}")`);

/**
 * One sorted upsert for every call row the group writes (callStart/callEnd patches and placeholders for calls a
 * leg names first), so concurrent group commits lock call rows in the same order and never deadlock.
 */
export async function updateCalls(tx: Tx, fresh: readonly BatchRecord[], placeholders: readonly CallRow[]): Promise<void> {
  const patches = new Map<string, CallRow>();
  for (const { record, job } of fresh) {
    if (record.objectKind !== 'call') continue;
    const patch = callPatch(record, job.node, job.batch.callBridge, job.batch.session);
    if (!patch) continue;
    const prev = patches.get(patch.id);
    patches.set(patch.id, prev ? mergeCallPatches(prev, patch) : patch);
  }
  for (const placeholder of placeholders) {
    const prev = patches.get(placeholder.id);
    patches.set(placeholder.id, prev ? mergeCallPatches(prev, placeholder) : placeholder);
  }
  if (!patches.size) return;
  const rows = [...patches.values()].sort((a, b) => a.id.localeCompare(b.id));
  await lockCallMeetings(tx, rows, fresh);
  await tx.execute(
    sql`INSERT INTO calls (${CALL_COLUMNS.columns}) SELECT ${CALL_COLUMNS.columns} FROM ${CALL_COLUMNS.from(rows)}
        ON CONFLICT (id) DO UPDATE SET ${CALL_FILL_NULLS}, "updated_at" = now()`,
  );
}

/**
 * Takes the advisory locks of the meetings of the calls this transaction writes or names, before writing any call
 * row: the same locks (and order) as the security policy's lockMeetings (security/load-meetings.ts), which it takes
 * later in this transaction for the meetings it decides, so already held then. Why before: a decision that changes
 * a meeting's level updates the `level` copy on every call row of the meeting (a trigger, migration 0011). Were a
 * call row locked here while this transaction then waited for that meeting's lock, the decision holding the lock
 * would wait for the row: a deadlock. And a call row written under its meeting's lock takes the level no concurrent
 * decision can change before this commits. Keys: each call's id (its meeting until a callCorrelator names another;
 * lockMeetings locks it as the provisional key), the callCorrelator it already has, and the one its patch brings
 * (@cms/db lockMeetingsOfCalls, which the actuator's call writers take too).
 */
async function lockCallMeetings(tx: Tx, rows: readonly CallRow[], fresh: readonly BatchRecord[]): Promise<void> {
  const ids = new Set(rows.map((row) => row.id));
  // The calls other records name (recordings, streaming) have their meetings decided in this transaction too.
  for (const { record } of fresh) if (record.callId) ids.add(record.callId);
  await lockMeetingsOfCalls(
    tx,
    ids,
    rows.flatMap((row) => (row.callCorrelator ? [row.callCorrelator] : [])),
  );
}
