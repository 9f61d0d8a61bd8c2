import { callMessages, type Database, meetingLevelChanges, meetings, recordset } from '@cms/db';
import {
  type CallMessage,
  type Classification,
  type CompiledPolicy,
  desiredMessage,
  type LegFacts,
  meetingKey,
  meetingLevel,
} from '@cms/policy';
import { sql } from 'drizzle-orm';

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

interface LevelChange {
  meetingKey: string;
  oldLevel: number | null;
  newLevel: number | null;
  causeLegId: string | null;
  reason: Classification | null;
}

/** A call instance whose desired message changed and must be written to CMS (after the transaction commits). */
export interface MessageWrite {
  callId: string;
  node: string;
  meetingKey: string;
  messageText: string;
}

export interface PolicyOutcome {
  levelChanges: LevelChange[];
  writes: MessageWrite[];
}

const MEETING_COLUMNS = recordset(meetings, ['meetingKey', 'level', 'decisiveLegId']);
const CHANGE_COLUMNS = recordset(meetingLevelChanges, ['meetingKey', 'oldLevel', 'newLevel', 'causeLegId', 'reason']);
const MESSAGE_COLUMNS = recordset(callMessages, [
  'callId',
  'node',
  'meetingKey',
  'level',
  'messageText',
  'messagePosition',
  'messageDuration',
  'status',
]);

type CallRow = {
  id: string;
  node: string | null;
  callCorrelator: string | null;
  endedAt: string | null;
};
type LegRow = LegFacts & { callId: string } & Record<string, unknown>;

/**
 * Recomputes the security level of every meeting the stored batch touched, in the same transaction: records a
 * level change with its cause, and sets the desired message of each of the meeting's live call instances (on
 * every bridge). Returns the writes to enqueue once the transaction has committed.
 */
export async function applySecurityPolicy(
  tx: Tx,
  touched: { legIds: string[]; callIds: string[] },
  policy: CompiledPolicy,
  managedNodes: ReadonlySet<string>,
): Promise<PolicyOutcome> {
  if (!touched.callIds.length) return { levelChanges: [], writes: [] };
  const touchedCalls = await tx.execute<CallRow>(
    sql`SELECT id, node, call_correlator AS "callCorrelator", ended_at AS "endedAt" FROM calls WHERE id IN (SELECT jsonb_array_elements_text(${JSON.stringify(touched.callIds)}::jsonb))`,
  );
  const keys = [...new Set(touchedCalls.rows.map((c) => meetingKey(c)))].sort();
  if (!keys.length) return { levelChanges: [], writes: [] };
  const keysJson = JSON.stringify(keys);
  const provisional = touchedCalls.rows.filter((c) => c.callCorrelator && c.callCorrelator !== c.id).map((c) => c.id);
  const lockKeys = JSON.stringify([...new Set([...keys, ...provisional])].sort());

  // One meeting, one decision at a time, across every worker (sorted: no lock cycles); provisional keys too.
  await tx.execute(
    sql`SELECT pg_advisory_xact_lock(k) FROM (SELECT hashtextextended('meeting:' || key, 7271) AS k FROM jsonb_array_elements_text(${lockKeys}::jsonb) AS key ORDER BY 1) AS keys`,
  );
  await adoptProvisionalKeys(tx, touchedCalls.rows);
  const { rows: instances } = await tx.execute<CallRow>(
    sql`SELECT id, node, call_correlator AS "callCorrelator", ended_at AS "endedAt" FROM calls
        WHERE call_correlator IN (SELECT jsonb_array_elements_text(${keysJson}::jsonb))
           OR id IN (SELECT jsonb_array_elements_text(${keysJson}::jsonb))`,
  );
  const instanceIds = JSON.stringify(instances.map((c) => c.id));
  // One after another: they share the transaction's connection (pg queues, and warns about, overlapping queries).
  // CDR legs, plus legs only the CMS API has shown us (reconciliation) where we hold no CDRs for them.
  const legs = await tx.execute<LegRow>(
    sql`SELECT id, call_id AS "callId", type, sub_type AS "subType", guest_connection AS "guestConnection", remote_party AS "remoteParty",
               remote_address AS "remoteAddress", state, connected_at AS "connectedAt", in_ivr AS "inIvr", deactivated, ended_at AS "endedAt"
        FROM call_legs WHERE call_id IN (SELECT jsonb_array_elements_text(${instanceIds}::jsonb))
        UNION ALL
        SELECT o.id, o.call_id, o.type, o.sub_type, NULL, o.remote_party, NULL, o.state, NULL, false, o.deactivated, NULL
        FROM call_leg_observations o
        WHERE o.call_id IN (SELECT jsonb_array_elements_text(${instanceIds}::jsonb)) AND NOT EXISTS (SELECT 1 FROM call_legs l WHERE l.id = o.id)
        ORDER BY 1`,
  );
  const recorders = await tx.execute<{ id: string }>(
    sql`SELECT DISTINCT call_leg_id AS id FROM cdr_records
        WHERE call_id IS NOT NULL AND call_id IN (SELECT jsonb_array_elements_text(${instanceIds}::jsonb))
          AND type IN ('recordingStart', 'streamingStart') AND call_leg_id IS NOT NULL`,
  );
  const current = await tx.execute<{ meetingKey: string; level: number | null; decisiveLegId: string | null }>(
    sql`SELECT meeting_key AS "meetingKey", level, decisive_leg_id AS "decisiveLegId" FROM meetings WHERE meeting_key IN (SELECT jsonb_array_elements_text(${keysJson}::jsonb))`,
  );
  const messages = await tx.execute<{
    callId: string;
    messageText: string;
    messagePosition: string | null;
    messageDuration: string;
    node: string | null;
    meetingKey: string;
  }>(
    sql`SELECT call_id AS "callId", message_text AS "messageText", message_position AS "messagePosition", message_duration AS "messageDuration", node, meeting_key AS "meetingKey"
        FROM call_messages WHERE call_id IN (SELECT jsonb_array_elements_text(${instanceIds}::jsonb))`,
  );
  const recorderIds = new Set(recorders.rows.map((r) => r.id));
  const currentByKey = new Map(current.rows.map((m) => [m.meetingKey, m]));
  const messageByCall = new Map(messages.rows.map((m) => [m.callId, m]));
  const touchedLegs = new Set(touched.legIds);
  const legsByCall = new Map<string, LegFacts[]>();
  for (const leg of legs.rows) {
    let list = legsByCall.get(leg.callId);
    if (!list) {
      list = [];
      legsByCall.set(leg.callId, list);
    }
    list.push({ ...leg, isRecorderOrStreamer: recorderIds.has(leg.id) });
  }
  const instancesByKey = new Map<string, CallRow[]>();
  for (const call of instances) {
    const key = meetingKey(call);
    let list = instancesByKey.get(key);
    if (!list) {
      list = [];
      instancesByKey.set(key, list);
    }
    list.push(call);
  }

  const meetingRows: { meetingKey: string; level: number | null; decisiveLegId: string | null }[] = [];
  const changeRows: LevelChange[] = [];
  const messageRows: (typeof callMessages.$inferInsert)[] = [];
  const writes: MessageWrite[] = [];

  for (const key of keys) {
    const calls = instancesByKey.get(key) ?? [];
    const meetingLegs = calls.flatMap((c) => legsByCall.get(c.id) ?? []);
    const decision = meetingLevel(meetingLegs, policy);
    const before = currentByKey.get(key);
    if (!before || before.level !== decision.level || before.decisiveLegId !== decision.decisiveLegId) {
      meetingRows.push({ meetingKey: key, level: decision.level, decisiveLegId: decision.decisiveLegId });
    }
    if ((before?.level ?? null) !== decision.level) {
      // The participant whose join, admission or departure changed the level: one of this batch's legs.
      const cause =
        meetingLegs.find((l) => l.id === decision.decisiveLegId && touchedLegs.has(l.id)) ?? meetingLegs.find((l) => touchedLegs.has(l.id));
      const decisive = decision.participants.find((p) => p.legId === decision.decisiveLegId);
      changeRows.push({
        meetingKey: key,
        oldLevel: before?.level ?? null,
        newLevel: decision.level,
        causeLegId: cause?.id ?? decision.decisiveLegId,
        reason: decisive?.classification ?? null,
      });
    }
    const desired: CallMessage = desiredMessage(decision.level, policy);
    for (const call of calls) {
      if (call.endedAt) continue;
      const existing = messageByCall.get(call.id);
      const position = 'messagePosition' in desired ? desired.messagePosition : null;
      if (
        existing &&
        existing.messageText === desired.messageText &&
        existing.messagePosition === position &&
        existing.messageDuration === desired.messageDuration
      ) {
        continue;
      }
      // A meeting that never showed a message has nothing to clear.
      if (!existing && desired.messageText === '') continue;
      const status = !call.node ? 'unplaced' : managedNodes.has(call.node) ? 'pending' : 'unmanaged';
      messageRows.push({
        callId: call.id,
        node: call.node,
        meetingKey: key,
        level: decision.level,
        messageText: desired.messageText,
        messagePosition: position,
        messageDuration: desired.messageDuration,
        status,
      });
      if (status === 'pending' && call.node)
        writes.push({ callId: call.id, node: call.node, meetingKey: key, messageText: desired.messageText });
    }
  }

  if (meetingRows.length) {
    await tx.execute(
      sql`INSERT INTO meetings (${MEETING_COLUMNS.columns}) SELECT ${MEETING_COLUMNS.columns} FROM ${MEETING_COLUMNS.from(meetingRows)}
          ON CONFLICT (meeting_key) DO UPDATE SET level = excluded.level, decisive_leg_id = excluded.decisive_leg_id, updated_at = now()`,
    );
  }
  if (changeRows.length) {
    await tx.execute(
      sql`INSERT INTO meeting_level_changes (${CHANGE_COLUMNS.columns}) SELECT ${CHANGE_COLUMNS.columns} FROM ${CHANGE_COLUMNS.from(changeRows)}`,
    );
  }
  if (messageRows.length) {
    // Each change bumps the version, so the actuator can tell the newest desired state from one it already wrote.
    await tx.execute(
      sql`INSERT INTO call_messages (${MESSAGE_COLUMNS.columns}) SELECT ${MESSAGE_COLUMNS.columns} FROM ${MESSAGE_COLUMNS.from(messageRows)}
          ON CONFLICT (call_id) DO UPDATE SET node = coalesce(excluded.node, call_messages.node), meeting_key = excluded.meeting_key, level = excluded.level,
            message_text = excluded.message_text, message_position = excluded.message_position, message_duration = excluded.message_duration,
            status = excluded.status, version = call_messages.version + 1, desired_at = now()`,
    );
  }
  return { levelChanges: changeRows, writes };
}

/**
 * Until its callStart arrives, a call is its own meeting (keyed by its call id: Cisco sends a leg's records
 * before the callStart). Once its callCorrelator is known, what was decided under the provisional key (the
 * meeting row, its level history, the call's desired message) moves to the real meeting.
 */
async function adoptProvisionalKeys(tx: Tx, calls: readonly CallRow[]): Promise<void> {
  const candidates = calls
    .filter((c) => c.callCorrelator && c.callCorrelator !== c.id)
    .map((c) => ({ from: c.id, to: c.callCorrelator as string }));
  if (!candidates.length) return;
  // Nearly every call has a callCorrelator, but only one decided before its callStart arrived has anything under
  // its call id, and then always a meetings row (a decision writes one): look for those first, in one statement.
  const { rows: provisional } = await tx.execute<{ key: string }>(
    sql`SELECT meeting_key AS key FROM meetings WHERE meeting_key IN (SELECT jsonb_array_elements_text(${JSON.stringify(candidates.map((m) => m.from))}::jsonb))`,
  );
  const decided = new Set(provisional.map((r) => r.key));
  const moves = candidates.filter((m) => decided.has(m.from));
  if (!moves.length) return;
  const json = JSON.stringify(moves);
  const pairs = sql`SELECT m->>'from' AS "from", m->>'to' AS "to" FROM jsonb_array_elements(${json}::jsonb) AS m`;
  await tx.execute(sql`UPDATE meeting_level_changes c SET meeting_key = p."to" FROM (${pairs}) p WHERE c.meeting_key = p."from"`);
  await tx.execute(sql`UPDATE call_messages c SET meeting_key = p."to" FROM (${pairs}) p WHERE c.meeting_key = p."from"`);
  // The provisional row becomes the meeting's row when the meeting has none yet (so its level carries over and
  // is not recorded as changing again); otherwise it goes. One provisional row per meeting at most is carried.
  await tx.execute(
    sql`UPDATE meetings m SET meeting_key = p."to"
        FROM (SELECT DISTINCT ON ("to") "from", "to" FROM (${pairs}) AS x ORDER BY "to", "from") p
        WHERE m.meeting_key = p."from" AND NOT EXISTS (SELECT 1 FROM meetings o WHERE o.meeting_key = p."to")`,
  );
  await tx.execute(sql`DELETE FROM meetings m USING (${pairs}) p WHERE m.meeting_key = p."from"`);
}
