import { recordFields, type XmlObject } from '@cms/cdr';
import { callLegs, calls, type Database } from '@cms/db';
import { HttpProblem } from '@cms/http';
import { and, asc, type Column, eq, gt, isNotNull, isNull, lt, or, type SQL, sql, type Table } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth.ts';
import { decodeCallsCursor, encodeCallsCursor } from '../cursor.ts';
import { bearerSecurity, cursorParameter, errorResponses, filterString } from '../schemas.ts';
import { toRfc3339 } from '../time.ts';

interface CallsQuery {
  limit: number;
  cursor?: string;
  active?: boolean;
  callCorrelator?: string;
  node?: string;
  coSpace?: string;
}

/** "table"."column": drizzle leaves columns unqualified in single-table selects, which a correlated subquery cannot afford. */
function qualified(table: Table, column: Column): SQL {
  return sql`${table}.${sql.identifier(column.name)}`;
}
const callId = qualified(calls, calls.id);
const legCallId = qualified(callLegs, callLegs.callId);
const legEndedAt = qualified(callLegs, callLegs.endedAt);

const callColumns = {
  id: calls.id,
  node: calls.node,
  callBridge: calls.callBridge,
  session: calls.session,
  name: calls.name,
  ownerName: calls.ownerName,
  callType: calls.callType,
  coSpace: calls.coSpace,
  tenant: calls.tenant,
  cdrTag: calls.cdrTag,
  callCorrelator: calls.callCorrelator,
  startedAt: calls.startedAt,
  endedAt: calls.endedAt,
  callLegsCompleted: calls.callLegsCompleted,
  callLegsMaxActive: calls.callLegsMaxActive,
  durationSeconds: calls.durationSeconds,
  endpointRecorded: calls.endpointRecorded,
  updatedAt: calls.updatedAt,
  legCount: sql<number>`(select count(*)::int from ${callLegs} where ${legCallId} = ${callId})`,
  activeLegCount: sql<number>`(select count(*)::int from ${callLegs} where ${legCallId} = ${callId} and ${legEndedAt} is null)`,
};

const legColumns = {
  id: callLegs.id,
  callId: callLegs.callId,
  node: callLegs.node,
  callBridge: callLegs.callBridge,
  displayName: callLegs.displayName,
  remoteParty: callLegs.remoteParty,
  remoteAddress: callLegs.remoteAddress,
  localAddress: callLegs.localAddress,
  type: callLegs.type,
  subType: callLegs.subType,
  lyncSubType: callLegs.lyncSubType,
  direction: callLegs.direction,
  guestConnection: callLegs.guestConnection,
  ownerId: callLegs.ownerId,
  sipCallId: callLegs.sipCallId,
  groupId: callLegs.groupId,
  cdrTag: callLegs.cdrTag,
  state: callLegs.state,
  inIvr: callLegs.inIvr,
  deactivated: callLegs.deactivated,
  startedAt: callLegs.startedAt,
  connectedAt: callLegs.connectedAt,
  endedAt: callLegs.endedAt,
  endReason: callLegs.endReason,
  durationSeconds: callLegs.durationSeconds,
  activatedDuration: callLegs.activatedDuration,
  encryptedMedia: callLegs.encryptedMedia,
  quality: callLegs.quality,
  updatedAt: callLegs.updatedAt,
};

type CallRow = Pick<typeof calls.$inferSelect, keyof typeof calls.$inferSelect & keyof typeof callColumns> & {
  legCount: number;
  activeLegCount: number;
};
type LegRow = Pick<typeof callLegs.$inferSelect, keyof typeof legColumns>;

function callView(row: CallRow) {
  return {
    ...row,
    startedAt: toRfc3339(row.startedAt),
    endedAt: toRfc3339(row.endedAt),
    updatedAt: toRfc3339(row.updatedAt),
  };
}

/**
 * call_legs.quality holds the callLegEnd element's quality children as CMS sent them (xmltodict); read through
 * the same recordFields as GET /records, so both name things alike (no "@", alarm always an array).
 */
function qualityFields(legId: string, quality: XmlObject): XmlObject {
  return recordFields({ '@type': 'callLegEnd', callLeg: { ...quality, '@id': legId } }).fields;
}

function legView(row: LegRow) {
  return {
    ...row,
    startedAt: toRfc3339(row.startedAt),
    connectedAt: toRfc3339(row.connectedAt),
    endedAt: toRfc3339(row.endedAt),
    updatedAt: toRfc3339(row.updatedAt),
    quality: row.quality === null ? null : qualityFields(row.id, row.quality),
  };
}

/**
 * The calls order: newest start first, calls not started yet (placeholders made by a leg that arrived before
 * its callStart) last, ties by id. Every position in it is a (startedAt, id) pair, which is what the cursor holds.
 */
function afterCursor(cursor: { startedAt: string | null; id: string }): SQL | undefined {
  if (cursor.startedAt === null) return and(isNull(calls.startedAt), gt(calls.id, cursor.id));
  return or(
    lt(calls.startedAt, cursor.startedAt),
    and(eq(calls.startedAt, cursor.startedAt), gt(calls.id, cursor.id)),
    isNull(calls.startedAt),
  );
}

const listQuerystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50, description: 'Calls per page.' },
    cursor: cursorParameter,
    active: { type: 'boolean', description: 'true: calls without a callEnd yet; false: ended calls.' },
    callCorrelator: { ...filterString, description: 'All call instances of one (possibly distributed) meeting.' },
    node: filterString,
    coSpace: filterString,
  },
} as const;

/** GET /calls and GET /calls/:id: the calls projection the policy worker maintains. */
export async function callsRoutes(app: FastifyInstance, options: { db: Database }): Promise<void> {
  const { db } = options;

  app.get<{ Querystring: CallsQuery }>(
    '/calls',
    {
      preHandler: requireRole('viewer'),
      schema: {
        summary: 'Calls, keyset-paginated',
        description:
          'Newest start first; calls whose callStart has not arrived yet come last; ties by id. ' +
          'Pass nextCursor back as cursor for the next page; nextCursor is null on the last page.',
        tags: ['calls'],
        security: bearerSecurity,
        querystring: listQuerystring,
        response: {
          200: {
            description: 'One page of calls.',
            type: 'object',
            required: ['calls', 'nextCursor'],
            properties: {
              calls: { type: 'array', items: { $ref: 'callSummary#' } },
              nextCursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const cursor = q.cursor === undefined ? undefined : decodeCallsCursor(q.cursor);
      const conditions: (SQL | undefined)[] = [];
      if (q.active !== undefined) conditions.push(q.active ? isNull(calls.endedAt) : isNotNull(calls.endedAt));
      if (q.callCorrelator !== undefined) conditions.push(eq(calls.callCorrelator, q.callCorrelator));
      if (q.node !== undefined) conditions.push(eq(calls.node, q.node));
      if (q.coSpace !== undefined) conditions.push(eq(calls.coSpace, q.coSpace));
      if (cursor) conditions.push(afterCursor(cursor));

      const rows = await db
        .select(callColumns)
        .from(calls)
        .where(and(...conditions))
        .orderBy(sql`${calls.startedAt} desc nulls last`, asc(calls.id))
        .limit(q.limit + 1);
      const page = rows.slice(0, q.limit).map(callView);
      const last = page.at(-1);
      return {
        calls: page,
        nextCursor: rows.length > q.limit && last ? encodeCallsCursor({ startedAt: last.startedAt, id: last.id }) : null,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/calls/:id',
    {
      preHandler: requireRole('viewer'),
      schema: {
        summary: 'One call with its legs',
        description: 'Legs in start order. A call whose callStart has not arrived yet has its call fields null.',
        tags: ['calls'],
        security: bearerSecurity,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } },
        response: {
          200: { description: 'The call and its legs.', $ref: 'callDetail#' },
          ...errorResponses,
          404: { description: 'No call with this id.', content: { 'application/problem+json': { schema: { $ref: 'problem#' } } } },
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const [[call], legs] = await Promise.all([
        db.select(callColumns).from(calls).where(eq(calls.id, id)),
        db
          .select(legColumns)
          .from(callLegs)
          .where(eq(callLegs.callId, id))
          .orderBy(sql`${callLegs.startedAt} asc nulls last`, asc(callLegs.id)),
      ]);
      // A leg naming its call before the callStart arrives makes the projection create a placeholder row, so a
      // known call always has a row here (its fields null until the callStart comes).
      if (!call) throw new HttpProblem(404, 'Not Found', `No call with id "${id}" has been recorded.`);
      return { ...callView(call), legs: legs.map(legView) };
    },
  );
}
