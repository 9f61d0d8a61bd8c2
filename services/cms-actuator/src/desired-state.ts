import { type CallMessageStatus, type CmsWriteKind, type CmsWriteStatus, callMessages, calls, cmsWrites, type Database } from '@cms/db';
import { and, eq, sql } from 'drizzle-orm';

/** The desired message of a call as the actuator needs it, with what is known about the call's end. */
export interface DesiredRow {
  callId: string;
  node: string | null;
  messageText: string;
  messagePosition: string | null;
  messageDuration: string;
  version: number;
  appliedVersion: number | null;
  status: CallMessageStatus;
  callEndedAt: string | null;
  /** Milliseconds since the last PUT that CMS accepted for this call's message was recorded; null if none. */
  sinceLastWriteMs: number | null;
  /** The version that PUT wrote; null if none. */
  lastWriteVersion: number | null;
}

export async function loadDesired(db: Database, callId: string): Promise<DesiredRow | undefined> {
  const rows = await db
    .select({
      callId: callMessages.callId,
      node: callMessages.node,
      messageText: callMessages.messageText,
      messagePosition: callMessages.messagePosition,
      messageDuration: callMessages.messageDuration,
      version: callMessages.version,
      appliedVersion: callMessages.appliedVersion,
      status: callMessages.status,
      callEndedAt: calls.endedAt,
      sinceLastWriteMs: sql<string | null>`(
        SELECT extract(epoch FROM now() - w.at) * 1000 FROM ${cmsWrites} w
        WHERE w.call_id = ${callMessages.callId} AND w.kind = 'callMessage' AND w.status = 'applied'
        ORDER BY w.id DESC LIMIT 1
      )`,
      lastWriteVersion: sql<number | null>`(
        SELECT w.version FROM ${cmsWrites} w
        WHERE w.call_id = ${callMessages.callId} AND w.kind = 'callMessage' AND w.status = 'applied'
        ORDER BY w.id DESC LIMIT 1
      )`,
    })
    .from(callMessages)
    .leftJoin(calls, eq(calls.id, callMessages.callId))
    .where(eq(callMessages.callId, callId));
  const row = rows[0];
  return (
    row && {
      ...row,
      sinceLastWriteMs: row.sinceLastWriteMs === null ? null : Number(row.sinceLastWriteMs),
      lastWriteVersion: row.lastWriteVersion === null ? null : Number(row.lastWriteVersion),
    }
  );
}

/**
 * Compare-and-set: records that `version` is what CMS shows, only if it is still the desired version. Returns
 * false when a newer version was desired meanwhile (it still has to be written).
 */
export async function markApplied(
  db: Database,
  callId: string,
  version: number,
  status: Extract<CallMessageStatus, 'applied' | 'unchanged'>,
): Promise<boolean> {
  const rows = await db
    .update(callMessages)
    .set({ appliedVersion: version, appliedAt: sql`now()`, status })
    .where(and(eq(callMessages.callId, callId), eq(callMessages.version, version)))
    .returning({ callId: callMessages.callId });
  return rows.length > 0;
}

/** Only the version that failed is marked: a newer desired version gets its own chance. */
export async function markDeadLettered(db: Database, callId: string, version: number): Promise<void> {
  await db
    .update(callMessages)
    .set({ status: 'deadLettered' })
    .where(and(eq(callMessages.callId, callId), eq(callMessages.version, version)));
}

/** CMS no longer knows the call: no version of its message can be shown, and the call has ended. */
export async function markCallEnded(db: Database, callId: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.update(callMessages).set({ status: 'callEnded' }).where(eq(callMessages.callId, callId));
    await tx
      .update(calls)
      .set({ endedAt: sql`coalesce(${calls.endedAt}, now())` })
      .where(eq(calls.id, callId));
  });
}

export interface WriteRecord {
  node: string;
  kind: CmsWriteKind;
  callId: string | null;
  desiredText: string | null;
  version: number | null;
  status: CmsWriteStatus;
  httpStatus: number | null;
  failureReason: string | null;
  attempts: number;
  latencyMs: number | null;
}

export async function insertWriteRecord(db: Database, record: WriteRecord): Promise<void> {
  await db.insert(cmsWrites).values(record);
}
