import { type Database, operatorActionSteps, operatorActions } from '@cms/db';
import { asc, eq, inArray } from 'drizzle-orm';
import { toRfc3339 } from '../time.ts';

type ActionRow = typeof operatorActions.$inferSelect;
type StepRow = typeof operatorActionSteps.$inferSelect;

function failureDetails(row: { failureReason: string | null; failureParameter: string | null }) {
  return row.failureReason === null ? null : { reason: row.failureReason, parameter: row.failureParameter };
}

function msBetween(from: string | null, to: string | null): number | null {
  if (from === null || to === null) return null;
  return Math.max(0, Date.parse(toRfc3339(to)) - Date.parse(toRfc3339(from)));
}

function stepView(action: ActionRow, step: StepRow) {
  return {
    step: step.step,
    node: step.node,
    callId: step.callId,
    status: step.status,
    httpStatus: step.httpStatus,
    failureDetails: failureDetails(step),
    result: step.result,
    writes: step.writes,
    attempts: step.attempts,
    startedAt: toRfc3339(step.startedAt),
    firstWriteAt: toRfc3339(step.firstWriteAt),
    completedAt: toRfc3339(step.completedAt),
    /** Accepted until the node's worker took the step. */
    queuedMs: msBetween(action.createdAt, step.startedAt),
    /** Accepted until its first write went to CMS (past the write ceiling). */
    toFirstWriteMs: msBetween(action.createdAt, step.firstWriteAt),
    cmsMs: step.cmsMs,
  };
}

function actionView(action: ActionRow, steps: StepRow[]) {
  return {
    id: action.id,
    kind: action.kind,
    status: action.status,
    createdAt: toRfc3339(action.createdAt) as string,
    completedAt: toRfc3339(action.completedAt),
    by: { tokenName: action.tokenName, role: action.role },
    callId: action.callId,
    legId: action.legId,
    meetingKey: action.meetingKey,
    parameters: action.parameters,
    idempotencyKey: action.idempotencyKey,
    httpStatus: action.httpStatus,
    failureDetails: failureDetails(action),
    result: action.result,
    durationMs: msBetween(action.createdAt, action.completedAt),
    steps: steps.map((step) => stepView(action, step)),
  };
}

export type ActionView = ReturnType<typeof actionView>;

export async function loadAction(db: Database, id: number): Promise<ActionView | undefined> {
  const [action] = await db.select().from(operatorActions).where(eq(operatorActions.id, id));
  if (!action) return undefined;
  const steps = await db
    .select()
    .from(operatorActionSteps)
    .where(eq(operatorActionSteps.actionId, id))
    .orderBy(asc(operatorActionSteps.step));
  return actionView(action, steps);
}

/** Actions (newest first) with their steps, two queries for the page. */
export async function actionViews(db: Database, actions: ActionRow[]): Promise<ActionView[]> {
  if (actions.length === 0) return [];
  const steps = await db
    .select()
    .from(operatorActionSteps)
    .where(
      inArray(
        operatorActionSteps.actionId,
        actions.map((a) => a.id),
      ),
    )
    .orderBy(asc(operatorActionSteps.actionId), asc(operatorActionSteps.step));
  return actions.map((action) =>
    actionView(
      action,
      steps.filter((s) => s.actionId === action.id),
    ),
  );
}

const failureSchema = {
  type: ['object', 'null'],
  description:
    "CMS's <failureDetails>: the reason element (callLegDoesNotExist, parameterError, ...) and, for parameterError, the parameter.",
  properties: { reason: { type: 'string' }, parameter: { type: ['string', 'null'] } },
} as const;

const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const;
const nullableInt = { type: ['integer', 'null'] } as const;
const freeObject = { type: ['object', 'null'], additionalProperties: true } as const;

/** The action resource (OpenAPI), as GET /api/v1/actions/<id> and the action routes answer it. */
export const actionSchema = {
  type: 'object',
  required: ['id', 'kind', 'status', 'createdAt', 'by', 'steps'],
  properties: {
    id: { type: 'integer' },
    kind: {
      type: 'string',
      description:
        'addParticipant, updateCallLeg (mute/layout of one), updateAllParticipants (mute everyone), presenterOn, presenterOff, deleteCallLeg, deleteCall, admitParticipants.',
    },
    status: {
      type: 'string',
      enum: ['queued', 'applied', 'failed'],
      description:
        "queued: accepted, on the node's write queue (or being written); applied: CMS took every write; failed: CMS refused it (failureDetails says why) or it could not be written.",
    },
    createdAt: { type: 'string', format: 'date-time' },
    completedAt: nullableTime,
    by: {
      type: 'object',
      description: 'Who asked: the token name and its role.',
      properties: { tokenName: { type: 'string' }, role: { type: 'string' } },
    },
    callId: { type: ['string', 'null'] },
    legId: { type: ['string', 'null'] },
    meetingKey: { type: ['string', 'null'] },
    parameters: { type: 'object', additionalProperties: true, description: 'The request body as sent.' },
    idempotencyKey: { type: ['string', 'null'] },
    httpStatus: { ...nullableInt, description: "CMS's HTTP status (of the failed write when it failed)." },
    failureDetails: failureSchema,
    result: { ...freeObject, description: 'What the action produced: participantId and callLegId of a dial-out, admitted legs, ...' },
    durationMs: nullableInt,
    steps: {
      type: 'array',
      description: 'One per CMS node (call instance) the action writes to, each a job on that node’s write queue.',
      items: {
        type: 'object',
        properties: {
          step: { type: 'integer' },
          node: { type: 'string' },
          callId: { type: ['string', 'null'] },
          status: { type: 'string', enum: ['queued', 'applied', 'failed'] },
          httpStatus: nullableInt,
          failureDetails: failureSchema,
          result: freeObject,
          writes: { type: 'integer', description: 'CMS writes (POST/PUT/DELETE) it made.' },
          attempts: { type: 'integer' },
          startedAt: nullableTime,
          firstWriteAt: nullableTime,
          completedAt: nullableTime,
          queuedMs: { ...nullableInt, description: 'Accepted until the node’s worker took it.' },
          toFirstWriteMs: { ...nullableInt, description: 'Accepted until its first write went to CMS.' },
          cmsMs: { ...nullableInt, description: 'Time spent waiting for CMS’s answers.' },
        },
      },
    },
  },
} as const;
