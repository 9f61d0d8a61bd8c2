import { RECORD_TYPES, recordFields } from '@cms/cdr';
import { cdrRecords, type Database } from '@cms/db';
import { HttpProblem } from '@cms/http';
import { and, asc, desc, eq, gt, gte, lt, type SQL } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth.ts';
import { decodeRecordsCursor, encodeRecordsCursor, type SortOrder } from '../cursor.ts';
import { TIMESTAMP_RULE } from '../parameters.ts';
import { bearerSecurity, cursorParameter, errorResponses, filterString, guidParameter } from '../schemas.ts';
import { toRfc3339 } from '../time.ts';

interface RecordsQuery {
  limit: number;
  order: SortOrder;
  cursor?: string;
  type?: string;
  callId?: string;
  callLegId?: string;
  callCorrelator?: string;
  session?: string;
  node?: string;
  from?: string;
  to?: string;
}

const recordColumns = {
  id: cdrRecords.id,
  session: cdrRecords.session,
  callBridge: cdrRecords.callBridge,
  node: cdrRecords.node,
  type: cdrRecords.type,
  time: cdrRecords.time,
  recordIndex: cdrRecords.recordIndex,
  correlatorIndex: cdrRecords.correlatorIndex,
  numPreceedingRecordsMissing: cdrRecords.numPreceedingRecordsMissing,
  receivedAt: cdrRecords.receivedAt,
  callId: cdrRecords.callId,
  callLegId: cdrRecords.callLegId,
  callCorrelator: cdrRecords.callCorrelator,
  raw: cdrRecords.raw,
};

type RecordRow = Pick<typeof cdrRecords.$inferSelect, keyof typeof recordColumns>;

/** Envelope names a record's elements must not overwrite (a later CMS release could add an element named "type"). */
const ENVELOPE = new Set<string>(Object.keys(recordColumns));

/**
 * A record as the API shows it: the envelope columns, then its own element under its name (`callLeg`, `call`,
 * `recording`, `streaming`) with Cisco field names. A record type from a later CMS release without any of those
 * shows its child elements under their own names; any that would clash with the envelope go under `elements`.
 */
function recordView(row: RecordRow): Record<string, unknown> {
  const { raw, ...columns } = row;
  const view: Record<string, unknown> = { ...columns, time: toRfc3339(row.time), receivedAt: toRfc3339(row.receivedAt) };
  const { objectKind, objectId, fields } = recordFields(raw);
  if (objectKind !== null) {
    view[objectKind] = { id: objectId, ...fields };
    return view;
  }
  for (const [name, value] of Object.entries(fields)) {
    if (!ENVELOPE.has(name)) view[name] = value;
    else view.elements = { ...(view.elements as Record<string, unknown> | undefined), [name]: value };
  }
  return view;
}

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 100, description: 'Records per page.' },
    order: {
      type: 'string',
      enum: ['asc', 'desc'],
      default: 'asc',
      description: 'asc: arrival order (oldest first), for consumers following new records; desc: newest first.',
    },
    cursor: cursorParameter,
    type: {
      ...filterString,
      description: `Record type: ${RECORD_TYPES.join(', ')}, or a type a later CMS release sent that is stored.`,
    },
    callId: { ...guidParameter, description: 'The call (a GUID).' },
    callLegId: { ...guidParameter, description: 'The call leg (a GUID).' },
    callCorrelator: filterString,
    session: filterString,
    node: filterString,
    from: { type: 'string', format: 'date-time', description: `Records with time >= from; ${TIMESTAMP_RULE.replace(/^must be/, 'an')}.` },
    to: { type: 'string', format: 'date-time', description: `Records with time < to; ${TIMESTAMP_RULE.replace(/^must be/, 'an')}.` },
  },
} as const;

const KNOWN_TYPES = new Set<string>(RECORD_TYPES);

/**
 * A type filter nothing could match says so (400 listing the types) instead of answering an empty page. Types
 * CMS may add in later releases are stored as they come, so a stored one stays a valid filter.
 */
async function checkType(db: Database, type: string): Promise<void> {
  if (KNOWN_TYPES.has(type)) return;
  const [stored] = await db.select({ id: cdrRecords.id }).from(cdrRecords).where(eq(cdrRecords.type, type)).limit(1);
  if (stored) return;
  throw new HttpProblem(
    400,
    'Bad Request',
    `Invalid request: querystring/type must be one of: ${RECORD_TYPES.join(', ')} (or a type a later CMS release sent; none of that name is stored)`,
  );
}

/** GET /records: every stored CDR, keyset-paginated on arrival order, with filters. */
export async function recordsRoutes(app: FastifyInstance, options: { db: Database }): Promise<void> {
  const { db } = options;
  app.get<{ Querystring: RecordsQuery }>(
    '/records',
    {
      preHandler: requireRole('viewer'),
      schema: {
        summary: 'CDRs, keyset-paginated',
        description: 'Pass nextCursor back as cursor (with the same order) for the next page; nextCursor is null on the last page.',
        tags: ['records'],
        security: bearerSecurity,
        querystring,
        response: {
          200: {
            description: 'One page of records.',
            type: 'object',
            required: ['records', 'nextCursor'],
            properties: {
              records: { type: 'array', items: { $ref: 'record#' } },
              nextCursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const cursor = q.cursor === undefined ? undefined : decodeRecordsCursor(q.cursor, q.order);
      if (q.type !== undefined) await checkType(db, q.type);
      const conditions: SQL[] = [];
      if (q.type !== undefined) conditions.push(eq(cdrRecords.type, q.type));
      if (q.callId !== undefined) conditions.push(eq(cdrRecords.callId, q.callId));
      if (q.callLegId !== undefined) conditions.push(eq(cdrRecords.callLegId, q.callLegId));
      if (q.callCorrelator !== undefined) conditions.push(eq(cdrRecords.callCorrelator, q.callCorrelator));
      if (q.session !== undefined) conditions.push(eq(cdrRecords.session, q.session));
      if (q.node !== undefined) conditions.push(eq(cdrRecords.node, q.node));
      if (q.from !== undefined) conditions.push(gte(cdrRecords.time, q.from));
      if (q.to !== undefined) conditions.push(lt(cdrRecords.time, q.to));
      if (cursor) conditions.push(q.order === 'asc' ? gt(cdrRecords.id, cursor.id) : lt(cdrRecords.id, cursor.id));

      // One row more than asked tells whether another page exists without a count.
      const rows = await db
        .select(recordColumns)
        .from(cdrRecords)
        .where(and(...conditions))
        .orderBy(q.order === 'asc' ? asc(cdrRecords.id) : desc(cdrRecords.id))
        .limit(q.limit + 1);
      const page = rows.slice(0, q.limit);
      const last = page.at(-1);
      return {
        records: page.map(recordView),
        nextCursor: rows.length > q.limit && last ? encodeRecordsCursor({ order: q.order, id: last.id }) : null,
      };
    },
  );
}
