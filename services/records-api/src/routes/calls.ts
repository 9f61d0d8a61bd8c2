import { callLegs, callMessages, calls, cmsWrites, type Database, meetings } from '@cms/db';
import { HttpProblem } from '@cms/http';
import type { CompiledPolicy } from '@cms/policy';
import { and, asc, desc, eq, gt, inArray, isNotNull, isNull, lt, lte, ne, or, type SQL, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth.ts';
import { classifiedLegs } from '../call-legs.ts';
import { decodeCallsCursor, encodeCallsCursor } from '../cursor.ts';
import { callInstances, callMeetingKey, instancesOf, levelHistory, meetingLevels, messageSummaries } from '../meeting-sql.ts';
import { bearerSecurity, cursorParameter, errorResponses, filterString, levelParameter } from '../schemas.ts';
import { qualified } from '../sql.ts';
import { toRfc3339 } from '../time.ts';

interface CallsQuery {
  limit: number;
  cursor?: string;
  active?: boolean;
  callCorrelator?: string;
  node?: string;
  coSpace?: string;
  level?: 1 | 2 | 3;
}

const callId = qualified(calls, calls.id);
const legCallId = qualified(callLegs, callLegs.callId);
const legEndedAt = qualified(callLegs, callLegs.endedAt);
const legSubType = qualified(callLegs, callLegs.subType);

/** A calls row as the list selects it; the leg counts are looked up for the page only (legCounts). */
const listColumns = {
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
  meetingKey: callMeetingKey,
};

const legCountColumns = {
  legCount: sql<number>`(select count(*)::int from ${callLegs} where ${legCallId} = ${callId})`,
  activeLegCount: sql<number>`(select count(*)::int from ${callLegs} where ${legCallId} = ${callId} and ${legEndedAt} is null)`,
  // Links between bridges carry other bridges' participants (as countsAsParticipant says): not people here.
  activeBridgeLinkCount: sql<number>`(select count(*)::int from ${callLegs} where ${legCallId} = ${callId} and ${legEndedAt} is null
    and lower(${legSubType}) in ('distributionlink', 'lyncdistribution'))`,
};

const callColumns = { ...listColumns, ...legCountColumns };

type LegCounts = { legCount: number; activeLegCount: number; activeBridgeLinkCount: number };

/**
 * The leg counts of a page of calls, by call id. Not subqueries of the list query: without planner statistics on
 * call_legs their estimated cost (thousands of legs per call) swamped the difference between the filter's own index
 * and the start-order one, and Postgres walked the start-order index for a rare coSpace (20,000 pages; bench/scale.ts).
 * Here they run per call of the page, found by primary key (unique, so estimated one row each whatever the statistics
 * say), each count a probe of call_legs' call_id index; a `call_id IN (page)` over call_legs was estimated at a quarter
 * of the table without statistics and read all of it.
 */
async function legCounts(db: Database, ids: string[]): Promise<Map<string, LegCounts>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .select({ id: calls.id, ...legCountColumns })
    .from(calls)
    .where(inArray(calls.id, ids));
  return new Map(rows.map(({ id, ...counts }) => [id, counts]));
}

const NO_LEGS: LegCounts = { legCount: 0, activeLegCount: 0, activeBridgeLinkCount: 0 };

type CallRow = Pick<typeof calls.$inferSelect, keyof typeof calls.$inferSelect & keyof typeof listColumns> &
  LegCounts & { meetingKey: string };

function callView(row: CallRow, level: number | null, message: { text: string; status: string } | null) {
  return {
    ...row,
    level,
    startedAt: toRfc3339(row.startedAt),
    endedAt: toRfc3339(row.endedAt),
    updatedAt: toRfc3339(row.updatedAt),
    message,
  };
}

/**
 * Calls whose meeting the policy has put at `level`: the copy of the meeting's level on the calls row, which triggers
 * keep equal to meetings.level (migration 0011), so the (level, started_at desc nulls last, id) index holds the
 * list's order. Probing each call's meeting instead walked every call newest first (6,800 pages for level 1's first
 * page on 800,000 calls; bench/scale.ts).
 */
function atLevel(level: number): SQL {
  return eq(calls.level, level);
}

/**
 * The calls order: newest start first, calls not started yet (placeholders made by a leg that arrived before
 * its callStart) last, ties by id. Every position in it is a (startedAt, id) pair, which is what the cursor holds.
 *
 * What follows a cursor is read in two index-bounded parts, never as one `… OR started_at IS NULL`: with that OR
 * Postgres cannot start the (started_at desc nulls last, id) index scan at the cursor and filters from the newest
 * call on (26,000 pages, 140–330 ms for a page in the middle of 800,000 calls; bench/scale.ts). The started part
 * is bounded by `started_at <= X`, where the scan starts; the not-started tail by `started_at IS NULL AND id > Y`.
 */
function startedAfter(cursor: { startedAt: string; id: string }): SQL {
  return and(
    lte(calls.startedAt, cursor.startedAt),
    or(lt(calls.startedAt, cursor.startedAt), and(eq(calls.startedAt, cursor.startedAt), gt(calls.id, cursor.id))),
  ) as SQL;
}

function notStartedAfter(id: string | undefined): SQL {
  return id === undefined ? isNull(calls.startedAt) : (and(isNull(calls.startedAt), gt(calls.id, id)) as SQL);
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
    level: { ...levelParameter, description: 'Only calls whose meeting is at this security level (1 secure, 2 internal, 3 external).' },
  },
} as const;

/** How many CMS writes a call detail lists; older ones stay in the table. */
const WRITES_LIMIT = 50;

async function callWrites(db: Database, id: string) {
  const rows = await db
    .select({
      id: cmsWrites.id,
      at: cmsWrites.at,
      node: cmsWrites.node,
      kind: cmsWrites.kind,
      target: cmsWrites.target,
      desiredText: cmsWrites.desiredText,
      version: cmsWrites.version,
      status: cmsWrites.status,
      httpStatus: cmsWrites.httpStatus,
      failureReason: cmsWrites.failureReason,
      attempts: cmsWrites.attempts,
      latencyMs: cmsWrites.latencyMs,
    })
    .from(cmsWrites)
    .where(eq(cmsWrites.callId, id))
    .orderBy(desc(cmsWrites.id))
    .limit(WRITES_LIMIT);
  return rows.map((row) => ({ ...row, at: toRfc3339(row.at) }));
}

const detailColumns = {
  ...callColumns,
  level: meetings.level,
  decisiveLegId: meetings.decisiveLegId,
  messageText: callMessages.messageText,
  messagePosition: callMessages.messagePosition,
  messageDuration: callMessages.messageDuration,
  messageLevel: callMessages.level,
  messageVersion: callMessages.version,
  messageDesiredAt: callMessages.desiredAt,
  messageStatus: callMessages.status,
  messageAppliedVersion: callMessages.appliedVersion,
  messageAppliedAt: callMessages.appliedAt,
};

/** One call with its meeting's level and its desired message, as the policy worker stored them. */
function selectCallDetail(db: Database, id: string) {
  return db
    .select(detailColumns)
    .from(calls)
    .leftJoin(meetings, eq(meetings.meetingKey, callMeetingKey))
    .leftJoin(callMessages, eq(callMessages.callId, calls.id))
    .where(eq(calls.id, id));
}

type DetailRow = Awaited<ReturnType<typeof selectCallDetail>>[number];

function callDetailView(row: DetailRow) {
  const {
    level,
    decisiveLegId,
    messageText,
    messagePosition,
    messageDuration,
    messageLevel,
    messageVersion,
    messageDesiredAt,
    messageStatus,
    messageAppliedVersion,
    messageAppliedAt,
    ...summary
  } = row;
  // Columns of a left-joined row are all null or all set; the checks narrow them for the compiler.
  const message =
    messageText === null || messageDuration === null || messageVersion === null || messageDesiredAt === null || messageStatus === null
      ? null
      : {
          text: messageText,
          position: messagePosition,
          duration: messageDuration,
          level: messageLevel,
          version: messageVersion,
          desiredAt: toRfc3339(messageDesiredAt),
          status: messageStatus,
          appliedVersion: messageAppliedVersion,
          appliedAt: toRfc3339(messageAppliedAt),
        };
  return { ...callView(summary, level, null), decisiveLegId, message };
}

/** GET /calls and GET /calls/:id: the calls projection the policy worker maintains, with each meeting's security level. */
export async function callsRoutes(app: FastifyInstance, options: { db: Database; policy: CompiledPolicy }): Promise<void> {
  const { db, policy } = options;

  app.get<{ Querystring: CallsQuery }>(
    '/calls',
    {
      preHandler: requireRole('viewer'),
      schema: {
        summary: 'Calls, keyset-paginated',
        description:
          'Newest start first; calls whose callStart has not arrived yet come last; ties by id. ' +
          'Pass nextCursor back as cursor for the next page; nextCursor is null on the last page. ' +
          "Each call shows its meeting's security level and its on-screen message.",
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
      if (q.level !== undefined) conditions.push(atLevel(q.level));
      const selectPage = (where: SQL | undefined, limit: number) =>
        db
          .select(listColumns)
          .from(calls)
          .where(and(...conditions, where))
          .orderBy(sql`${calls.startedAt} desc nulls last`, asc(calls.id))
          .limit(limit);
      let rows: Awaited<ReturnType<typeof selectPage>>;
      if (cursor === undefined) {
        rows = await selectPage(undefined, q.limit + 1);
      } else if (cursor.startedAt === null) {
        rows = await selectPage(notStartedAfter(cursor.id), q.limit + 1);
      } else {
        rows = await selectPage(startedAfter({ startedAt: cursor.startedAt, id: cursor.id }), q.limit + 1);
        // The started calls ran out on this page: the not-started ones follow them, from the first.
        if (rows.length <= q.limit) rows = rows.concat(await selectPage(notStartedAfter(undefined), q.limit + 1 - rows.length));
      }
      // Levels and messages are looked up for the page only: joined into the query above, Postgres would join
      // every call before sorting out the page.
      const pageRows = rows.slice(0, q.limit);
      const keys = pageRows.map((row) => row.meetingKey);
      const ids = pageRows.map((row) => row.id);
      const [levels, messages, counts] = await Promise.all([meetingLevels(db, keys), messageSummaries(db, ids), legCounts(db, ids)]);
      const page = pageRows.map((row) =>
        callView({ ...row, ...(counts.get(row.id) ?? NO_LEGS) }, levels.get(row.meetingKey) ?? null, messages.get(row.id) ?? null),
      );
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
        summary: 'One call with its legs, security level, message and CMS writes',
        description:
          'Legs in start order, each classified by the configured policy (the rule and list entry that gave its level). ' +
          "The level is the meeting's (every instance sharing callCorrelator); instances lists the meeting's other call instances. " +
          'A call whose callStart has not arrived yet has its call fields null.',
        tags: ['calls'],
        security: bearerSecurity,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } },
        response: {
          200: { description: 'The call, its legs and its security level.', $ref: 'callDetail#' },
          ...errorResponses,
          404: { description: 'No call with this id.', content: { 'application/problem+json': { schema: { $ref: 'problem#' } } } },
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const [[call], legs, writes] = await Promise.all([selectCallDetail(db, id), classifiedLegs(db, policy, [id]), callWrites(db, id)]);
      // A leg naming its call before the callStart arrives makes the projection create a placeholder row, so a
      // known call always has a row here (its fields null until the callStart comes).
      if (!call) throw new HttpProblem(404, 'Not Found', `No call with id "${id}" has been recorded.`);
      const [instances, history] = await Promise.all([
        callInstances(db, and(instancesOf(call.meetingKey), ne(calls.id, id)) as SQL),
        levelHistory(db, call.meetingKey),
      ]);
      return { ...callDetailView(call), instances, legs, levelHistory: history, writes };
    },
  );
}
