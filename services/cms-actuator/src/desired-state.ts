import { type CallMessageStatus, type CmsWriteKind, type CmsWriteStatus, callMessages, calls, cmsWrites, type Database } from '@cms/db';
import { and, desc, eq, sql } from 'drizzle-orm';

/** The desired message of a call as the actuator needs it, with what is known about the call's end. */
export interface DesiredRow {
  callId: string;
  node: string | null;
  /** The meeting's security level this message shows (1 most secure); null for the cleared message. */
  level: number | null;
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
  /** The text that PUT wrote (what the call shows, unless CMS lost it); null if none. */
  lastWriteText: string | null;
}

export async function loadDesired(db: Database, callId: string): Promise<DesiredRow | undefined> {
  // The call's last PUT that CMS accepted, read once for when, which version and which text.
  const lastWrite = db
    .select({ at: cmsWrites.at, version: cmsWrites.version, text: cmsWrites.desiredText })
    .from(cmsWrites)
    .where(and(eq(cmsWrites.callId, callMessages.callId), eq(cmsWrites.kind, 'callMessage'), eq(cmsWrites.status, 'applied')))
    .orderBy(desc(cmsWrites.id))
    .limit(1)
    .as('last_write');
  const rows = await db
    .select({
      callId: callMessages.callId,
      node: callMessages.node,
      level: callMessages.level,
      messageText: callMessages.messageText,
      messagePosition: callMessages.messagePosition,
      messageDuration: callMessages.messageDuration,
      version: callMessages.version,
      appliedVersion: callMessages.appliedVersion,
      status: callMessages.status,
      callEndedAt: calls.endedAt,
      sinceLastWriteMs: sql<string | null>`extract(epoch FROM now() - ${lastWrite.at}) * 1000`,
      lastWriteVersion: lastWrite.version,
      lastWriteText: lastWrite.text,
    })
    .from(callMessages)
    .leftJoin(calls, eq(calls.id, callMessages.callId))
    .leftJoinLateral(lastWrite, sql`true`)
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
