import { callLegObservations, calls, type Database, LEG_ENDED_BY_RECONCILIATION, lockMeetingsOfCalls, recordset } from '@cms/db';
import { sql } from 'drizzle-orm';
import { adoptProvisionalRows } from '../events/provisional-rows.ts';
import type { NodeSnapshot } from './observe-node.ts';

const CALL_COLUMNS = recordset(calls, ['id', 'node', 'name', 'coSpace', 'callCorrelator']);
const OBSERVATION_COLUMNS = recordset(callLegObservations, [
  'id',
  'callId',
  'node',
  'remoteParty',
  'type',
  'subType',
  'state',
  'deactivated',
  'participantId',
  'name',
  'direction',
  'activator',
  'audioMuted',
  'videoMuted',
  'layout',
  'importance',
  'presenter',
]);

/** The database's clock, so "written after the pass began" compares like with like. */
export async function databaseNow(db: Database): Promise<string> {
  const { rows } = await db.execute<{ now: string }>(sql`SELECT now()::text AS now`);
  return (rows[0] as { now: string }).now;
}

/**
 * Our calls of this node that have not ended (as far as CDRs and earlier passes tell), as known before the pass
 * began: a call that appears while the pass reads is not the pass's to judge.
 */
export async function activeCallIds(db: Database, node: string, before: string): Promise<string[]> {
  const { rows } = await db.execute<{ id: string }>(
    sql`SELECT id FROM calls WHERE node = ${node} AND ended_at IS NULL AND updated_at < ${before}::timestamptz ORDER BY id`,
  );
  return rows.map((r) => r.id);
}

/** Legs we hold CDRs for, with their participant (groupId): their CDR projection wins, so the API is not asked about them. */
export async function knownLegIds(db: Database, ids: string[]): Promise<Map<string, string | null>> {
  if (!ids.length) return new Map();
  const { rows } = await db.execute<{ id: string; groupId: string | null }>(
    sql`SELECT id, group_id AS "groupId" FROM call_legs WHERE id IN (SELECT jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb))`,
  );
  return new Map(rows.map((r) => [r.id, r.groupId]));
}

/**
 * These legs, those whose live view was read longest ago first: no row, or a row without the live columns (only
 * what a pass that did not read the leg stores), then by the row's last change. A row is changed by every read
 * of the leg and by the events feed, and not by a pass that leaves the leg unread, so passes take turns.
 */
export async function stalestFirst(db: Database, ids: string[]): Promise<string[]> {
  if (!ids.length) return [];
  const { rows } = await db.execute<{ id: string }>(
    sql`SELECT x.id FROM jsonb_array_elements_text(${JSON.stringify(ids)}::jsonb) AS x(id)
        LEFT JOIN call_leg_observations o ON o.id = x.id
        ORDER BY (o.audio_muted IS NULL AND o.layout IS NULL) DESC, o.updated_at ASC NULLS FIRST, x.id`,
  );
  return rows.map((r) => r.id);
}

export interface StoredSnapshot {
  /** Calls this pass marked ended (CMS no longer has them). */
  endedCallIds: string[];
}

/**
 * What one pass learnt, in one transaction:
 * - calls CMS lists are created or completed (empty columns filled, CDR facts never overwritten);
 * - the node's leg observations follow what CMS listed, so a leg it no longer lists stops counting; the table is
 *   shared with the events feed, so facts the feed stored after the pass began are newer than the pass's and are
 *   kept, a column the pass did not read keeps its value, a leg the pass did not read keeps its row's age, and
 *   while the node's feed is live the rows it wrote are its own to remove (a participant on another bridge is in
 *   this node's roster but not in its call legs);
 * - our calls CMS no longer has are ended, with their legs and desired messages: their CDRs were lost (a
 *   bridge restart, records CMS discarded), and nothing else would ever end them.
 */
export async function storeSnapshot(
  db: Database,
  node: string,
  snapshot: NodeSnapshot,
  // Without a pass start every row is older than the pass (callers that only end calls).
  pass: { startedAt: string; eventsLive: boolean } = { startedAt: 'infinity', eventsLive: false },
): Promise<StoredSnapshot> {
  const callRows = snapshot.calls
    .map((c) => ({ id: c.id, node, name: c.name, coSpace: c.coSpace, callCorrelator: c.callCorrelator }))
    .sort((a, b) => a.id.localeCompare(b.id));
  const legRows = snapshot.legs.map((l) => ({ ...l, node })).sort((a, b) => a.id.localeCompare(b.id));
  return retryOnConflict(() =>
    db.transaction(async (tx) => {
      // Two passes over one node (two replicas) would otherwise interleave their delete and insert.
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`reconcile:${node}`}, 7272))`);
      if (callRows.length) {
        await lockMeetingsOfJoiningCalls(tx, callRows);
        await tx.execute(
          sql`INSERT INTO calls (${CALL_COLUMNS.columns}) SELECT ${CALL_COLUMNS.columns} FROM ${CALL_COLUMNS.from(callRows)} ORDER BY id
              ON CONFLICT (id) DO UPDATE SET node = coalesce(calls.node, excluded.node), name = coalesce(calls.name, excluded.name),
                co_space = coalesce(calls.co_space, excluded.co_space), call_correlator = coalesce(calls.call_correlator, excluded.call_correlator),
                updated_at = now()
              WHERE (calls.node IS NULL AND excluded.node IS NOT NULL) OR (calls.name IS NULL AND excluded.name IS NOT NULL)
                 OR (calls.co_space IS NULL AND excluded.co_space IS NOT NULL) OR (calls.call_correlator IS NULL AND excluded.call_correlator IS NOT NULL)`,
        );
      }
      const listed = JSON.stringify(legRows.map((l) => l.id));
      await tx.execute(
        sql`DELETE FROM call_leg_observations
            WHERE node = ${node} AND updated_at < ${pass.startedAt}::timestamptz
              AND id NOT IN (SELECT jsonb_array_elements_text(${listed}::jsonb))
              AND (source = 'polling' OR NOT ${pass.eventsLive}::boolean)`,
      );
      if (legRows.length) {
        // A participant the feed stored before its leg id was known (keyed by the participant id) becomes its leg's row.
        await adoptProvisionalRows(
          tx,
          legRows.flatMap((l) => (l.participantId ? [{ legId: l.id, participantId: l.participantId }] : [])),
        );
      }
      const read = legRows.filter((l) => l.read);
      if (read.length) {
        await tx.execute(
          sql`INSERT INTO call_leg_observations AS o (${OBSERVATION_COLUMNS.columns}, source) SELECT ${OBSERVATION_COLUMNS.columns}, 'polling' FROM ${OBSERVATION_COLUMNS.from(read)}
              ON CONFLICT (id) DO UPDATE SET call_id = excluded.call_id, node = excluded.node, source = 'polling', observed_at = now(), updated_at = now(),
                remote_party = coalesce(excluded.remote_party, o.remote_party), type = coalesce(excluded.type, o.type),
                sub_type = coalesce(excluded.sub_type, o.sub_type), state = coalesce(excluded.state, o.state),
                deactivated = coalesce(excluded.deactivated, o.deactivated), participant_id = coalesce(excluded.participant_id, o.participant_id),
                name = coalesce(excluded.name, o.name), direction = coalesce(excluded.direction, o.direction),
                activator = coalesce(excluded.activator, o.activator), audio_muted = coalesce(excluded.audio_muted, o.audio_muted),
                video_muted = coalesce(excluded.video_muted, o.video_muted), layout = coalesce(excluded.layout, o.layout),
                importance = coalesce(excluded.importance, o.importance), presenter = coalesce(excluded.presenter, o.presenter)
              WHERE o.updated_at < ${pass.startedAt}::timestamptz`,
        );
      }
      const unread = legRows.filter((l) => !l.read);
      if (unread.length) {
        // Listed, not read: the row says where the leg is, and keeps its facts and their age (the rotation reads the
        // stalest next; the policy compares a row's age with the CDRs').
        await tx.execute(
          sql`INSERT INTO call_leg_observations AS o (${OBSERVATION_COLUMNS.columns}, source) SELECT ${OBSERVATION_COLUMNS.columns}, 'polling' FROM ${OBSERVATION_COLUMNS.from(unread)}
              ON CONFLICT (id) DO UPDATE SET call_id = excluded.call_id, node = excluded.node,
                remote_party = coalesce(o.remote_party, excluded.remote_party), participant_id = coalesce(o.participant_id, excluded.participant_id)
              WHERE o.updated_at < ${pass.startedAt}::timestamptz
                AND ((o.call_id, o.node) IS DISTINCT FROM (excluded.call_id, excluded.node)
                  OR (o.remote_party IS NULL AND excluded.remote_party IS NOT NULL) OR (o.participant_id IS NULL AND excluded.participant_id IS NOT NULL))`,
        );
      }
      const endedCallIds = await endCalls(tx, node, snapshot.gone);
      return { endedCallIds };
    }),
  );
}

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

/**
 * Takes the meetings' locks of the listed calls this pass inserts or gives a callCorrelator (a row's level copy is
 * its meeting's; a level decision in flight would leave it stale: @cms/db lockMeetingsOfCalls). A call stored with
 * a callCorrelator keeps it (CDR facts are never overwritten), so in the usual pass, every listed call already
 * stored from its CDRs, no lock is taken and no decision waits for the pass.
 */
async function lockMeetingsOfJoiningCalls(tx: Tx, callRows: readonly { id: string; callCorrelator: string | null }[]): Promise<void> {
  const { rows: settled } = await tx.execute<{ id: string }>(
    sql`SELECT id FROM calls WHERE id IN (SELECT jsonb_array_elements_text(${JSON.stringify(callRows.map((c) => c.id))}::jsonb))
          AND call_correlator IS NOT NULL`,
  );
  const kept = new Set(settled.map((r) => r.id));
  const joining = callRows.filter((c) => !kept.has(c.id));
  await lockMeetingsOfCalls(
    tx,
    joining.map((c) => c.id),
    joining.flatMap((c) => (c.callCorrelator ? [c.callCorrelator] : [])),
  );
}

/**
 * Ends our calls of this node that CMS says have ended (a pass found them gone, or the events feed saw them
 * removed), with their open legs and desired messages; returns those it ended. Their CDRs stay the record: a leg's
 * callLegEnd, when it comes, replaces our end (the reason marks the end as ours, so a late record from before the
 * end does not reopen the leg; see policy-worker storage/legs.ts).
 */
async function endCalls(tx: Tx, node: string, callIds: readonly string[]): Promise<string[]> {
  if (!callIds.length) return [];
  const gone = JSON.stringify([...callIds].sort());
  const { rows: ended } = await tx.execute<{ id: string }>(
    sql`UPDATE calls SET ended_at = now(), updated_at = now()
        WHERE id IN (SELECT jsonb_array_elements_text(${gone}::jsonb)) AND node = ${node} AND ended_at IS NULL RETURNING id`,
  );
  const endedCallIds = ended.map((r) => r.id).sort();
  if (endedCallIds.length) {
    const endedJson = JSON.stringify(endedCallIds);
    // Without an end the legs would count for the meeting for ever.
    await tx.execute(
      sql`UPDATE call_legs SET ended_at = now(), end_reason = ${LEG_ENDED_BY_RECONCILIATION}, updated_at = now()
          WHERE call_id IN (SELECT jsonb_array_elements_text(${endedJson}::jsonb)) AND ended_at IS NULL`,
    );
    await tx.execute(
      sql`UPDATE call_messages SET status = 'callEnded' WHERE call_id IN (SELECT jsonb_array_elements_text(${endedJson}::jsonb))`,
    );
  }
  return endedCallIds;
}

/**
 * A call the events feed saw removed from its node's `calls` list: CMS says it has ended, so it is ended now, as a
 * reconciliation pass would end it, with the feed's rows of it. Its CDRs, when they come, stay the record.
 */
export async function endRemovedCall(db: Database, node: string, callId: string): Promise<{ ended: boolean; rowsRemoved: number }> {
  return retryOnConflict(() =>
    db.transaction(async (tx) => {
      const { rowCount } = await tx.execute(sql`DELETE FROM call_leg_observations WHERE source = 'events' AND call_id = ${callId}`);
      const ended = await endCalls(tx, node, [callId]);
      return { ended: ended.length > 0, rowsRemoved: rowCount ?? 0 };
    }),
  );
}

/** Deadlock (40P01) or serialization failure (40001) against a concurrent CDR commit: the transaction is simply run again. */
async function retryOnConflict<T>(run: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      const code = (err as { code?: string; cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
      if (attempt >= attempts || (code !== '40P01' && code !== '40001')) throw err;
    }
  }
}
