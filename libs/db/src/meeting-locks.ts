import { sql } from 'drizzle-orm';
import type { Database } from './client.ts';

/** A transaction on a Database: what every writer of call rows runs in. */
type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0];

/**
 * Takes, until the transaction ends, the advisory locks of the meetings these call rows belong to or will: each
 * call's id (its meeting while no callCorrelator names another), the callCorrelator it has stored, and `keys` (the
 * callCorrelators the caller is about to write). The same locks as the policy worker's decisions
 * (policy-worker security/load-meetings.ts lockMeetings: hash of 'meeting:' || key, sorted, so no lock cycles).
 *
 * Why every writer of call rows takes them first: calls.level is a copy of the meeting's level, kept by triggers
 * (migration 0011). A call row inserted or given a callCorrelator copies the level its meeting has committed; a
 * decision changing that level concurrently updates only the rows it can see, so without the lock the new row keeps
 * the old level. Taken before any call row is written: a decision holding a meeting's lock updates the meeting's
 * call rows, so a writer holding a row while waiting for that lock would deadlock with it.
 */
export async function lockMeetingsOfCalls(tx: Transaction, callIds: Iterable<string>, keys: Iterable<string> = []): Promise<void> {
  const ids = [...new Set(callIds)];
  const named = [...new Set([...ids, ...keys])].filter((key) => key !== '');
  if (!named.length) return;
  await tx.execute(
    sql`SELECT pg_advisory_xact_lock(k) FROM (
          SELECT DISTINCT hashtextextended('meeting:' || key, 7271) AS k FROM (
            SELECT jsonb_array_elements_text(${JSON.stringify(named)}::jsonb) AS key
            UNION ALL
            SELECT call_correlator FROM calls WHERE id IN (SELECT jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb)) AND call_correlator <> ''
          ) AS named
          ORDER BY 1
        ) AS locks`,
  );
}
