import { callMessages, meetingLevelChanges, meetings, recordset } from '@cms/db';
import type { MeetingsDecision, ProvisionalMove } from '@cms/policy';
import { sql } from 'drizzle-orm';
import type { Tx } from '../transaction.ts';

/** The writes of the security policy: what libs/policy decided, in the transaction that read it. */

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

/**
 * Moves what was decided under provisional keys (the meeting row, its level history, the call's desired message)
 * to the real meeting, before the real meeting's state is read.
 */
export async function adoptProvisionalMeetings(tx: Tx, moves: readonly ProvisionalMove[]): Promise<void> {
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

/** Writes the meetings rows, level history and desired messages of a decision. */
export async function persistDecision(tx: Tx, decision: MeetingsDecision): Promise<void> {
  if (decision.meetings.length) {
    await tx.execute(
      sql`INSERT INTO meetings (${MEETING_COLUMNS.columns}) SELECT ${MEETING_COLUMNS.columns} FROM ${MEETING_COLUMNS.from(decision.meetings)}
          ON CONFLICT (meeting_key) DO UPDATE SET level = excluded.level, decisive_leg_id = excluded.decisive_leg_id, updated_at = now()`,
    );
  }
  if (decision.levelChanges.length) {
    await tx.execute(
      sql`INSERT INTO meeting_level_changes (${CHANGE_COLUMNS.columns}) SELECT ${CHANGE_COLUMNS.columns} FROM ${CHANGE_COLUMNS.from(decision.levelChanges)}`,
    );
  }
  if (decision.messages.length) {
    // Each change bumps the version, so the actuator can tell the newest desired state from one it already wrote.
    await tx.execute(
      sql`INSERT INTO call_messages (${MESSAGE_COLUMNS.columns}) SELECT ${MESSAGE_COLUMNS.columns} FROM ${MESSAGE_COLUMNS.from(decision.messages)}
          ON CONFLICT (call_id) DO UPDATE SET node = coalesce(excluded.node, call_messages.node), meeting_key = excluded.meeting_key, level = excluded.level,
            message_text = excluded.message_text, message_position = excluded.message_position, message_duration = excluded.message_duration,
            status = excluded.status, version = call_messages.version + 1, desired_at = now()`,
    );
  }
}
