import type { CallInstance, LegFacts, MeetingState, ProvisionalMove, StoredMeeting, StoredMessage } from '@cms/policy';
import { sql } from 'drizzle-orm';
import type { Tx } from '../transaction.ts';

/**
 * The reads of the security policy: the calls a transaction touched, the locks of their meetings, their instances,
 * legs (all of an instance's, or only the changed ones), recorder legs and stored decisions (libs/policy decides from
 * them; participant-levels.ts holds the rest). Queries run one after another: they share the transaction's
 * connection (pg queues, and warns about, overlapping queries).
 */

/** A row as pg returns it (drizzle's execute wants an index signature). */
type Row<T> = T & Record<string, unknown>;

const CALL_SELECT = sql`SELECT id, node, call_correlator AS "callCorrelator", ended_at AS "endedAt" FROM calls`;

/** The stored rows of these calls (a call id not stored yet is left out). */
export async function loadCalls(tx: Tx, callIds: readonly string[]): Promise<CallInstance[]> {
  const { rows } = await tx.execute<Row<CallInstance>>(
    sql`${CALL_SELECT} WHERE id IN (SELECT jsonb_array_elements_text(${JSON.stringify(callIds)}::jsonb))`,
  );
  return rows;
}

/** One meeting, one decision at a time, across every worker (sorted: no lock cycles); provisional keys too. */
export async function lockMeetings(tx: Tx, lockKeys: readonly string[]): Promise<void> {
  await tx.execute(
    sql`SELECT pg_advisory_xact_lock(k) FROM (SELECT hashtextextended('meeting:' || key, 7271) AS k FROM jsonb_array_elements_text(${JSON.stringify(lockKeys)}::jsonb) AS key ORDER BY 1) AS keys`,
  );
}

/** Which of these provisional meeting keys have a meetings row (were decided before their callStart arrived). */
export async function decidedProvisionalKeys(tx: Tx, candidates: readonly ProvisionalMove[]): Promise<Set<string>> {
  // Nearly every call has a callCorrelator, so this is one statement for all of them, and none when there is none.
  if (!candidates.length) return new Set();
  const { rows } = await tx.execute<{ key: string }>(
    sql`SELECT meeting_key AS key FROM meetings WHERE meeting_key IN (SELECT jsonb_array_elements_text(${JSON.stringify(candidates.map((m) => m.from))}::jsonb))`,
  );
  return new Set(rows.map((r) => r.key));
}

/**
 * How long a participant only the events feed shows waits before it counts: the roster has no leg type, so until
 * the leg's CDRs (normally within a fraction of a second) say what it is, an app user could pass for a SIP user of
 * their domain; counted at once, a join would briefly show a better level than the truth. The feed asks for a
 * recompute after this grace. (Legs read by polling carry their type and count at once.)
 */
const UNCORROBORATED_GRACE = '2 seconds';

/**
 * Every call instance of these meetings, on any bridge, by id: the order decisions take them in. `= ANY (ARRAY(…))`
 * on both sides of the OR, so each is an index condition (a BitmapOr); `IN (subquery) OR IN (subquery)` was a
 * sequential scan of every call (60,000 pages, 0.4 s on 800,000 calls; bench/scale.ts ingest).
 */
export async function loadInstances(tx: Tx, keys: readonly string[]): Promise<CallInstance[]> {
  const keysJson = JSON.stringify(keys);
  const { rows } = await tx.execute<Row<CallInstance>>(
    sql`${CALL_SELECT}
        WHERE call_correlator = ANY (ARRAY(SELECT jsonb_array_elements_text(${keysJson}::jsonb)))
           OR id = ANY (ARRAY(SELECT jsonb_array_elements_text(${keysJson}::jsonb)))
        ORDER BY id`,
  );
  return rows;
}

/** A leg as the policy reads it, with its call. */
type MeetingLeg = LegFacts & { callId: string };

/**
 * The legs of these call instances, by id: CDR legs, plus legs only CMS's live view has shown us (the events feed, or
 * reconciliation's polling) where no CDR has named them yet (by leg id, or by participant: the feed keys a
 * participant it cannot place by its id). CDR facts decide the classification; where the live view of a leg that has
 * not ended is newer than its CDRs, its state and lobby flag are the fresher facts (both agree most of the time, and
 * then nothing changes). Only some of them: `legIds`, those CDR legs (a participant a CDR names is never one of the
 * live view's alone); `liveIds`, the legs and live-view rows of these leg or participant ids.
 */
export async function loadLegs(
  tx: Tx,
  instanceIds: readonly string[],
  only?: { legIds: readonly string[] } | { liveIds: readonly string[] },
): Promise<MeetingLeg[]> {
  const ids = JSON.stringify(instanceIds);
  const some = (list: readonly string[]) => sql`ARRAY(SELECT jsonb_array_elements_text(${JSON.stringify(list)}::jsonb))`;
  const onlyCdr = !only
    ? sql``
    : 'legIds' in only
      ? sql`AND l.id = ANY (${some(only.legIds)})`
      : sql`AND (l.id = ANY (${some(only.liveIds)}) OR l.group_id = ANY (${some(only.liveIds)}))`;
  const onlyLive =
    only && 'liveIds' in only ? sql`AND (o.id = ANY (${some(only.liveIds)}) OR o.participant_id = ANY (${some(only.liveIds)}))` : sql``;
  const liveOnly =
    only && 'legIds' in only
      ? sql``
      : sql`UNION ALL
        SELECT o.id, o.call_id, o.type, o.sub_type, NULL, o.remote_party, NULL, o.state, NULL, false, o.deactivated, NULL
        FROM call_leg_observations o
        WHERE o.call_id IN (SELECT jsonb_array_elements_text(${ids}::jsonb))
          AND (o.source <> 'events' OR o.observed_at < now() - ${UNCORROBORATED_GRACE}::interval) ${onlyLive}
          AND NOT EXISTS (
            SELECT 1 FROM call_legs l
            WHERE l.id = o.id
               OR (o.participant_id IS NOT NULL AND l.group_id = o.participant_id AND l.call_id IN (SELECT jsonb_array_elements_text(${ids}::jsonb)))
          )`;
  const { rows } = await tx.execute<Row<MeetingLeg>>(
    sql`SELECT l.id, l.call_id AS "callId", l.type, l.sub_type AS "subType", l.guest_connection AS "guestConnection", l.remote_party AS "remoteParty",
               l.remote_address AS "remoteAddress",
               CASE WHEN o.updated_at > l.updated_at AND o.state IS NOT NULL THEN o.state ELSE l.state END AS state,
               l.connected_at AS "connectedAt", l.in_ivr AS "inIvr",
               CASE WHEN o.updated_at > l.updated_at AND o.deactivated IS NOT NULL THEN o.deactivated ELSE l.deactivated END AS deactivated,
               l.ended_at AS "endedAt"
        FROM call_legs l
        LEFT JOIN LATERAL (
          SELECT x.state, x.deactivated, x.updated_at FROM call_leg_observations x
          WHERE x.id = l.id OR (l.group_id IS NOT NULL AND x.participant_id = l.group_id)
          ORDER BY x.updated_at DESC LIMIT 1
        ) o ON l.ended_at IS NULL
        WHERE l.call_id IN (SELECT jsonb_array_elements_text(${ids}::jsonb)) ${onlyCdr}
        ${liveOnly}
        ORDER BY 1`,
  );
  return rows;
}

/** Legs named by a recordingStart or streamingStart record of these instances (few: one per recording). */
export async function loadRecorderLegIds(tx: Tx, instanceIds: readonly string[]): Promise<Set<string>> {
  const { rows } = await tx.execute<{ id: string }>(
    sql`SELECT DISTINCT call_leg_id AS id FROM cdr_records
        WHERE call_id IS NOT NULL AND call_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(instanceIds)}::jsonb))
          AND type IN ('recordingStart', 'streamingStart') AND call_leg_id IS NOT NULL`,
  );
  return new Set(rows.map((r) => r.id));
}

/** The meetings rows of these meetings, and the desired messages of their instances. */
export async function loadStoredDecisions(
  tx: Tx,
  keys: readonly string[],
  instanceIds: readonly string[],
): Promise<Pick<MeetingState, 'meetings' | 'messages'>> {
  const meetings = await tx.execute<Row<StoredMeeting>>(
    sql`SELECT meeting_key AS "meetingKey", level, decisive_leg_id AS "decisiveLegId" FROM meetings WHERE meeting_key IN (SELECT jsonb_array_elements_text(${JSON.stringify(keys)}::jsonb))`,
  );
  const messages = await tx.execute<Row<StoredMessage>>(
    sql`SELECT call_id AS "callId", message_text AS "messageText", message_position AS "messagePosition", message_duration AS "messageDuration"
        FROM call_messages WHERE call_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(instanceIds)}::jsonb))`,
  );
  return { meetings: meetings.rows, messages: messages.rows };
}

/** Everything stored about these meetings: their call instances on every bridge, legs, recorders, rows and messages. */
export async function loadMeetingState(tx: Tx, keys: readonly string[], known?: readonly CallInstance[]): Promise<MeetingState> {
  const instances = known ?? (await loadInstances(tx, keys));
  const instanceIds = instances.map((c) => c.id);
  const legs = await loadLegs(tx, instanceIds);
  const recorderLegIds = await loadRecorderLegIds(tx, instanceIds);
  return { instances, legs, recorderLegIds, ...(await loadStoredDecisions(tx, keys, instanceIds)) };
}
