import { type CallMessageStatus, callMessages, calls, type Database, meetingLevelChanges, meetings } from '@cms/db';
import { and, asc, desc, eq, inArray, or, type SQL, sql } from 'drizzle-orm';
import { qualified } from './sql.ts';
import { toRfc3339 } from './time.ts';

const callId = qualified(calls, calls.id);
const callCorrelator = qualified(calls, calls.callCorrelator);

/**
 * The meeting a calls row belongs to, as @cms/policy's meetingKey computes it: its callCorrelator, or its id
 * when it has none (an empty callCorrelator counts as none).
 */
export const callMeetingKey = sql<string>`coalesce(nullif(${callCorrelator}, ''), ${callId})`;

/**
 * The call instances of meeting `key` (a value or a column). Written as two indexable alternatives rather than
 * `callMeetingKey = key`, so Postgres can use the callCorrelator index and the primary key.
 */
export function instancesOf(key: SQL | string): SQL {
  return or(sql`${callCorrelator} = ${key}`, and(sql`${callId} = ${key}`, sql`coalesce(${callCorrelator}, '') = ''`)) as SQL;
}

/** How many level changes a detail answer lists; older ones stay in the table. */
const HISTORY_LIMIT = 50;

/** The meeting's level changes, newest first. */
export async function levelHistory(db: Database, key: string) {
  const rows = await db
    .select({
      id: meetingLevelChanges.id,
      at: meetingLevelChanges.at,
      oldLevel: meetingLevelChanges.oldLevel,
      newLevel: meetingLevelChanges.newLevel,
      causeLegId: meetingLevelChanges.causeLegId,
      reason: meetingLevelChanges.reason,
    })
    .from(meetingLevelChanges)
    .where(eq(meetingLevelChanges.meetingKey, key))
    .orderBy(desc(meetingLevelChanges.id))
    .limit(HISTORY_LIMIT);
  return rows.map((row) => ({ ...row, at: toRfc3339(row.at) }));
}

/** The short form of a call's desired message for lists: null when the policy has not decided one. */
function messageSummary(row: {
  messageText: string | null;
  messageStatus: CallMessageStatus | null;
}): { text: string; status: CallMessageStatus } | null {
  return row.messageText === null || row.messageStatus === null ? null : { text: row.messageText, status: row.messageStatus };
}

/** The stored level of each of `keys` that the policy has decided one for. */
export async function meetingLevels(db: Database, keys: string[]): Promise<Map<string, number | null>> {
  if (keys.length === 0) return new Map();
  const rows = await db
    .select({ meetingKey: meetings.meetingKey, level: meetings.level })
    .from(meetings)
    .where(inArray(meetings.meetingKey, [...new Set(keys)]));
  return new Map(rows.map((row) => [row.meetingKey, row.level]));
}

/** The desired message of each of `callIds` that has one. */
export async function messageSummaries(db: Database, callIds: string[]): Promise<Map<string, { text: string; status: string }>> {
  if (callIds.length === 0) return new Map();
  const rows = await db
    .select({ callId: callMessages.callId, text: callMessages.messageText, status: callMessages.status })
    .from(callMessages)
    .where(inArray(callMessages.callId, callIds));
  return new Map(rows.map(({ callId, ...message }) => [callId, message]));
}

/** The call instances matching `where` (one meeting's), in start order, each with its message. */
export async function callInstances(db: Database, where: SQL) {
  const rows = await db
    .select({
      id: calls.id,
      node: calls.node,
      callBridge: calls.callBridge,
      name: calls.name,
      coSpace: calls.coSpace,
      startedAt: calls.startedAt,
      endedAt: calls.endedAt,
      messageText: callMessages.messageText,
      messageStatus: callMessages.status,
    })
    .from(calls)
    .leftJoin(callMessages, eq(callMessages.callId, calls.id))
    .where(where)
    .orderBy(sql`${calls.startedAt} asc nulls last`, asc(calls.id));
  return rows.map(({ messageText, messageStatus, ...row }) => ({
    ...row,
    startedAt: toRfc3339(row.startedAt),
    endedAt: toRfc3339(row.endedAt),
    message: messageSummary({ messageText, messageStatus }),
  }));
}
