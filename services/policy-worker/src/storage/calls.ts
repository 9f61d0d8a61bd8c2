import { calls, recordset } from '@cms/db';
import { getTableColumns, sql } from 'drizzle-orm';
import type { Tx } from '../transaction.ts';
import { type CallRow, callPatch, mergeCallPatches } from './call-patch.ts';
import { conflictSet } from './conflict-set.ts';
import type { BatchRecord } from './records.ts';

const CALL_KEYS = (Object.keys(getTableColumns(calls)) as (keyof typeof calls.$inferInsert & string)[]).filter((k) => k !== 'updatedAt');
const CALL_COLUMNS = recordset(calls, CALL_KEYS);
// Calls keep the first non-null value of each field (call-patch.ts: the order records arrive in does not matter).
const CALL_FILL_NULLS = conflictSet(calls, ['id', 'updatedAt'], (c) => `coalesce("calls"."${c}", excluded."${c}")`);

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
  await tx.execute(
    sql`INSERT INTO calls (${CALL_COLUMNS.columns}) SELECT ${CALL_COLUMNS.columns} FROM ${CALL_COLUMNS.from(rows)}
        ON CONFLICT (id) DO UPDATE SET ${CALL_FILL_NULLS}, "updated_at" = now()`,
  );
}
