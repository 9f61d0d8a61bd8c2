import type { Config } from '@cms/config';
import { type Database, OPERATOR_ACTION_KINDS, OPERATOR_ACTION_STATUSES, type OperatorActionStatus, operatorActions } from '@cms/db';
import { HttpProblem } from '@cms/http';
import type { Logger } from '@cms/observability';
import { and, desc, eq, gte, lt, type SQL } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth.ts';
import { ActionDesk } from '../operator-actions/submit.ts';
import { actionSchema, actionViews, loadAction } from '../operator-actions/view.ts';
import { bearerSecurity, cursorParameter, errorResponses, filterString } from '../schemas.ts';
import { callControlRoutes } from './call-control.ts';
import { lobbyRoutes } from './lobby.ts';

export interface OperatorActionOptions {
  config: Config;
  db: Database;
  desk: ActionDesk;
  /** The status of an action, or undefined when there is none. */
  actionStatus(id: number): Promise<OperatorActionStatus | undefined>;
}

interface ActionsQuery {
  limit: number;
  cursor?: string;
  kind?: (typeof OPERATOR_ACTION_KINDS)[number];
  status?: OperatorActionStatus;
  callId?: string;
  meetingKey?: string;
  legId?: string;
  tokenName?: string;
  since?: string;
  until?: string;
}

/** The actions cursor: the id of the page's last action (newest first), as base64url so it stays opaque. */
function encodeCursor(id: number): string {
  return Buffer.from(`a${id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^a(\d{1,18})$/.exec(text);
  if (!match)
    throw new HttpProblem(
      400,
      'Bad Request',
      'querystring/cursor is not a cursor this endpoint issued; send the nextCursor of a previous answer unchanged',
    );
  return Number(match[1]);
}

/**
 * Operator actions (call control, the lobby) and their audit: GET /actions lists every action with who asked,
 * what, the target, the parameters and the outcome; GET /actions/<id> follows one. The action routes share one
 * ActionDesk (the nodes' write queues).
 */
export async function operatorActionRoutes(app: FastifyInstance, options: { config: Config; db: Database; log: Logger }): Promise<void> {
  const { db } = options;
  const desk = new ActionDesk(options.config, db, options.log);
  app.addHook('onClose', () => desk.close());
  const actionStatus = async (id: number) => {
    const [row] = await db.select({ status: operatorActions.status }).from(operatorActions).where(eq(operatorActions.id, id));
    return row?.status;
  };
  const shared: OperatorActionOptions = { config: options.config, db, desk, actionStatus };
  await app.register(callControlRoutes, shared);
  await app.register(lobbyRoutes, shared);

  app.get<{ Params: { id: number } }>(
    '/actions/:id',
    {
      preHandler: requireRole('viewer'),
      schema: {
        summary: 'One operator action: queued, applied, or failed with CMS’s failureDetails',
        description: 'With who asked (token name and role), the target, the parameters, and one step per CMS node with its timings.',
        tags: ['call control'],
        security: bearerSecurity,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'integer', minimum: 1 } } },
        response: {
          200: { description: 'The action.', ...actionSchema },
          ...errorResponses,
          404: { description: 'No action with this id.', content: { 'application/problem+json': { schema: { $ref: 'problem#' } } } },
        },
      },
    },
    async (request) => {
      const view = await loadAction(db, request.params.id);
      if (!view) throw new HttpProblem(404, 'Not Found', `No operator action with id ${request.params.id}.`);
      return view;
    },
  );

  app.get<{ Querystring: ActionsQuery }>(
    '/actions',
    {
      preHandler: requireRole('viewer'),
      schema: {
        summary: 'The audit of operator actions, newest first, keyset-paginated',
        description: 'Pass nextCursor back as cursor for the next page; nextCursor is null on the last page.',
        tags: ['call control'],
        security: bearerSecurity,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            cursor: cursorParameter,
            kind: { type: 'string', enum: [...OPERATOR_ACTION_KINDS] },
            status: { type: 'string', enum: [...OPERATOR_ACTION_STATUSES] },
            callId: filterString,
            meetingKey: filterString,
            legId: filterString,
            tokenName: { ...filterString, description: 'Who asked: the token name.' },
            since: { type: 'string', format: 'date-time', description: 'Actions created at or after this time.' },
            until: { type: 'string', format: 'date-time', description: 'Actions created before this time.' },
          },
        },
        response: {
          200: {
            description: 'One page of actions.',
            type: 'object',
            required: ['actions', 'nextCursor'],
            properties: { actions: { type: 'array', items: actionSchema }, nextCursor: { type: ['string', 'null'] } },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const conditions: (SQL | undefined)[] = [];
      if (q.cursor !== undefined) conditions.push(lt(operatorActions.id, decodeCursor(q.cursor)));
      if (q.kind !== undefined) conditions.push(eq(operatorActions.kind, q.kind));
      if (q.status !== undefined) conditions.push(eq(operatorActions.status, q.status));
      if (q.callId !== undefined) conditions.push(eq(operatorActions.callId, q.callId));
      if (q.meetingKey !== undefined) conditions.push(eq(operatorActions.meetingKey, q.meetingKey));
      if (q.legId !== undefined) conditions.push(eq(operatorActions.legId, q.legId));
      if (q.tokenName !== undefined) conditions.push(eq(operatorActions.tokenName, q.tokenName));
      if (q.since !== undefined) conditions.push(gte(operatorActions.createdAt, q.since));
      if (q.until !== undefined) conditions.push(lt(operatorActions.createdAt, q.until));
      const rows = await db
        .select()
        .from(operatorActions)
        .where(and(...conditions))
        .orderBy(desc(operatorActions.id))
        .limit(q.limit + 1);
      const page = rows.slice(0, q.limit);
      const last = page.at(-1);
      return { actions: await actionViews(db, page), nextCursor: rows.length > q.limit && last ? encodeCursor(last.id) : null };
    },
  );
}
