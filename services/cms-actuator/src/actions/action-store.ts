import {
  callLegObservations,
  callLegs,
  type Database,
  type OperatorActionStatus,
  operatorActionSteps,
  operatorActions,
  presenterSavedLegs,
} from '@cms/db';
import { and, asc, eq, sql } from 'drizzle-orm';

/** A transaction of `db`. */
type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0];

/** One node's step of an operator action, as its write job needs it. */
export interface StepRow {
  actionId: number;
  step: number;
  node: string;
  callId: string | null;
  params: Record<string, unknown>;
  status: OperatorActionStatus;
  tokenName: string;
  kind: string;
}

export async function loadStep(db: Database, actionId: number, step: number): Promise<StepRow | undefined> {
  const [row] = await db
    .select({
      actionId: operatorActionSteps.actionId,
      step: operatorActionSteps.step,
      node: operatorActionSteps.node,
      callId: operatorActionSteps.callId,
      params: operatorActionSteps.params,
      status: operatorActionSteps.status,
      tokenName: operatorActions.tokenName,
      kind: operatorActions.kind,
    })
    .from(operatorActionSteps)
    .innerJoin(operatorActions, eq(operatorActions.id, operatorActionSteps.actionId))
    .where(and(eq(operatorActionSteps.actionId, actionId), eq(operatorActionSteps.step, step)));
  return row;
}

export async function markStepStarted(db: Database, actionId: number, step: number): Promise<void> {
  await db
    .update(operatorActionSteps)
    .set({ startedAt: sql`coalesce(${operatorActionSteps.startedAt}, now())`, attempts: sql`${operatorActionSteps.attempts} + 1` })
    .where(and(eq(operatorActionSteps.actionId, actionId), eq(operatorActionSteps.step, step)));
}

export interface StepOutcome {
  status: Exclude<OperatorActionStatus, 'queued'>;
  httpStatus: number | null;
  failureReason: string | null;
  failureParameter: string | null;
  result: Record<string, unknown> | null;
  writes: number;
  firstWriteAt: Date | null;
  cmsMs: number;
}

/**
 * Stores a step's outcome and, in the same transaction, the action's: final once every step is (failed if any
 * failed, with the first failed step's CMS status and reason), its result the step's when it has one step.
 * The action row is locked first, so steps of two nodes finishing together both count.
 */
export async function completeStep(db: Database, actionId: number, step: number, outcome: StepOutcome): Promise<OperatorActionStatus> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT 1 FROM ${operatorActions} WHERE id = ${actionId} FOR UPDATE`);
    await tx
      .update(operatorActionSteps)
      .set({
        status: outcome.status,
        httpStatus: outcome.httpStatus,
        failureReason: outcome.failureReason,
        failureParameter: outcome.failureParameter,
        result: outcome.result,
        writes: outcome.writes,
        firstWriteAt: outcome.firstWriteAt?.toISOString() ?? null,
        completedAt: sql`now()`,
        cmsMs: Math.round(outcome.cmsMs),
      })
      .where(and(eq(operatorActionSteps.actionId, actionId), eq(operatorActionSteps.step, step), eq(operatorActionSteps.status, 'queued')));
    const steps = await tx
      .select({
        status: operatorActionSteps.status,
        httpStatus: operatorActionSteps.httpStatus,
        failureReason: operatorActionSteps.failureReason,
        failureParameter: operatorActionSteps.failureParameter,
        result: operatorActionSteps.result,
      })
      .from(operatorActionSteps)
      .where(eq(operatorActionSteps.actionId, actionId))
      .orderBy(asc(operatorActionSteps.step));
    if (steps.some((s) => s.status === 'queued')) return 'queued';
    const failed = steps.find((s) => s.status === 'failed');
    const status: OperatorActionStatus = failed ? 'failed' : 'applied';
    await tx
      .update(operatorActions)
      .set({
        status,
        httpStatus: failed?.httpStatus ?? 200,
        failureReason: failed?.failureReason ?? null,
        failureParameter: failed?.failureParameter ?? null,
        result: steps.length === 1 ? (steps[0]?.result ?? null) : null,
        completedAt: sql`now()`,
      })
      .where(eq(operatorActions.id, actionId));
    return status;
  });
}

/**
 * The CMS participant that owns a leg, as we know it: the live roster's participant id (events feed), else the CDRs'
 * groupId (CMS puts the participant id there). Null when neither knows: the caller asks CMS.
 */
export async function knownParticipantId(db: Database | Transaction, callLegId: string): Promise<string | null> {
  const [row] = await db
    .select({
      participantId: sql<string | null>`coalesce(
        (SELECT ${callLegObservations.participantId} FROM ${callLegObservations} WHERE ${callLegObservations.id} = ${callLegId}),
        (SELECT nullif(${callLegs.groupId}, '') FROM ${callLegs} WHERE ${callLegs.id} = ${callLegId}))`,
    })
    .from(sql`(SELECT 1) AS one`);
  return row?.participantId ?? null;
}

export type SavedLegState = Record<string, string | number | boolean | null>;

export interface SavedLeg {
  callLegId: string;
  participantId: string | null;
  previous: SavedLegState;
}

/** Keeps the first saved state of each leg: a retried step must not save what presenter mode itself wrote. */
export async function saveLegStates(
  db: Database,
  where: { meetingKey: string; node: string; callId: string; actionId: number },
  legs: SavedLeg[],
): Promise<void> {
  if (legs.length === 0) return;
  await db
    .insert(presenterSavedLegs)
    .values(legs.map((leg) => ({ ...where, callLegId: leg.callLegId, participantId: leg.participantId, previous: leg.previous })))
    .onConflictDoNothing();
}

export async function savedLegStates(db: Database, meetingKey: string, node: string, callId: string): Promise<SavedLeg[]> {
  return db
    .select({
      callLegId: presenterSavedLegs.callLegId,
      participantId: presenterSavedLegs.participantId,
      previous: presenterSavedLegs.previous,
    })
    .from(presenterSavedLegs)
    .where(and(eq(presenterSavedLegs.meetingKey, meetingKey), eq(presenterSavedLegs.node, node), eq(presenterSavedLegs.callId, callId)));
}

export async function forgetLegStates(db: Database, meetingKey: string, node: string, callId: string): Promise<void> {
  await db
    .delete(presenterSavedLegs)
    .where(and(eq(presenterSavedLegs.meetingKey, meetingKey), eq(presenterSavedLegs.node, node), eq(presenterSavedLegs.callId, callId)));
}

/** The advisory lock key of a call instance: its per-leg and everyone writes are sent one at a time (withTargetLock). */
export function callLock(callId: string | null, callLegId?: string): string {
  return callId ? `call:${callId}` : `callLeg:${callLegId}`;
}

/**
 * What later accepted actions set on a call leg, by field: the newest action's id for each field. Later actions
 * are those on the leg itself (PUT /callLegs/<id>) and those on everyone in its meeting (PUT
 * /calls/<id>/participants/*). A write of an older action must leave those fields alone, so the operator's last
 * request wins whichever job runs first. Actions already failed do not count (they changed nothing).
 */
export async function newerLegFields(db: Database | Transaction, actionId: number, callLegId: string): Promise<Map<string, number>> {
  const rows = await db
    .select({ id: operatorActions.id, fields: sql<Record<string, unknown> | null>`${operatorActionSteps.params} -> 'fields'` })
    .from(operatorActions)
    .innerJoin(operatorActionSteps, eq(operatorActionSteps.actionId, operatorActions.id))
    .where(
      and(
        sql`${operatorActions.id} > ${actionId}`,
        sql`${operatorActions.status} <> 'failed'`,
        sql`((${operatorActions.kind} = 'updateCallLeg' AND ${operatorActionSteps.params} ->> 'callLegId' = ${callLegId})
          OR (${operatorActions.kind} = 'updateAllParticipants'
              AND ${operatorActions.meetingKey} = (SELECT a.meeting_key FROM operator_actions a WHERE a.id = ${actionId})))`,
      ),
    )
    .orderBy(asc(operatorActions.id));
  const newer = new Map<string, number>();
  for (const row of rows) for (const field of Object.keys(row.fields ?? {})) newer.set(field, row.id);
  return newer;
}

/** A field a later per-leg action sets: its value, and whether that action's write on this call instance is done. */
export interface LaterLegField {
  actionId: number;
  value: unknown;
  applied: boolean;
}

/**
 * For an action on everyone in a meeting: what later accepted per-leg actions (PUT /callLegs/<id>) of the same
 * meeting set on legs of this call instance, by leg and field (the newest action's value per field). Those legs
 * must keep what the later action asked (its fields are left out of the older write for them).
 */
export async function laterLegActions(
  db: Database | Transaction,
  actionId: number,
  callId: string,
): Promise<Map<string, Map<string, LaterLegField>>> {
  const rows = await db
    .select({
      id: operatorActions.id,
      callLegId: sql<string>`${operatorActionSteps.params} ->> 'callLegId'`,
      fields: sql<Record<string, unknown> | null>`${operatorActionSteps.params} -> 'fields'`,
      stepStatus: operatorActionSteps.status,
    })
    .from(operatorActions)
    .innerJoin(operatorActionSteps, eq(operatorActionSteps.actionId, operatorActions.id))
    .where(
      and(
        sql`${operatorActions.id} > ${actionId}`,
        eq(operatorActions.kind, 'updateCallLeg'),
        sql`${operatorActions.status} <> 'failed'`,
        sql`${operatorActions.meetingKey} = (SELECT a.meeting_key FROM operator_actions a WHERE a.id = ${actionId})`,
        eq(operatorActionSteps.callId, callId),
      ),
    )
    .orderBy(asc(operatorActions.id));
  const later = new Map<string, Map<string, LaterLegField>>();
  for (const row of rows) {
    let fields = later.get(row.callLegId);
    if (!fields) {
      fields = new Map();
      later.set(row.callLegId, fields);
    }
    for (const [field, value] of Object.entries(row.fields ?? {})) {
      fields.set(field, { actionId: row.id, value, applied: row.stepStatus === 'applied' });
    }
  }
  return later;
}

/**
 * Runs `body` while holding a Postgres advisory lock on `key`, so the writes of one target (a call leg) are sent
 * one at a time by every replica. Waiting is a retried try-lock, not a blocked session: a waiter holds no pool
 * connection, only the holder does while its write is in flight (take the lock after waiting for the write
 * ceiling, not before). `body` queries through `tx` only (a second pool connection taken while holding one could
 * wait for ever when every connection is a holder).
 */
export async function withTargetLock<T>(db: Database, key: string, body: (tx: Transaction) => Promise<T>): Promise<T> {
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    const done = await db.transaction(async (tx) => {
      const { rows } = await tx.execute<{ locked: boolean }>(sql`SELECT pg_try_advisory_xact_lock(hashtextextended(${key}, 0)) AS locked`);
      if (!rows[0]?.locked) return undefined;
      return { value: await body(tx) };
    });
    if (done) return done.value;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/**
 * Adds a step to an action (a step handed to the bridge that hosts its target): the next step number, taken under
 * the action row's lock so two steps handing over at once get different numbers. The step it is handed from
 * completes after this, so the action cannot be final before the new step is.
 */
export async function addStep(
  db: Database,
  actionId: number,
  step: { node: string; callId: string | null; params: Record<string, unknown> },
): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT 1 FROM ${operatorActions} WHERE id = ${actionId} FOR UPDATE`);
    const [row] = await tx
      .select({ next: sql<number>`coalesce(max(${operatorActionSteps.step}), -1) + 1` })
      .from(operatorActionSteps)
      .where(eq(operatorActionSteps.actionId, actionId));
    const next = Number(row?.next ?? 0);
    await tx.insert(operatorActionSteps).values({ actionId, step: next, node: step.node, callId: step.callId, params: step.params });
    return next;
  });
}
