import { type Database, lockMeetingsOfCalls } from '@cms/db';
import { sql } from 'drizzle-orm';

/**
 * A call the `calls` subscription lists: created if no CDR has named it yet (so its participants have a call in the
 * API and the policy can decide its meeting), otherwise only its empty columns are filled: CDR facts are never
 * overwritten. The same rule as a reconciliation pass (snapshot-store.ts).
 */
export async function storeListedCall(
  db: Database,
  node: string,
  call: { id: string; name: string | null; callCorrelator: string | null },
): Promise<boolean> {
  // Under the meetings' locks (the call's id and the callCorrelator it has or gets): the row's level copy is its
  // meeting's, and a level decision in flight would leave the copy stale (@cms/db lockMeetingsOfCalls).
  const { rowCount } = await db.transaction(async (tx) => {
    await lockMeetingsOfCalls(tx, [call.id], call.callCorrelator ? [call.callCorrelator] : []);
    return tx.execute(
      sql`INSERT INTO calls (id, node, name, call_correlator) VALUES (${call.id}, ${node}, ${call.name}, ${call.callCorrelator})
        ON CONFLICT (id) DO UPDATE SET node = coalesce(calls.node, excluded.node), name = coalesce(calls.name, excluded.name),
          call_correlator = coalesce(calls.call_correlator, excluded.call_correlator), updated_at = now()
        WHERE (calls.node IS NULL AND excluded.node IS NOT NULL) OR (calls.name IS NULL AND excluded.name IS NOT NULL)
           OR (calls.call_correlator IS NULL AND excluded.call_correlator IS NOT NULL)`,
    );
  });
  return (rowCount ?? 0) > 0;
}
