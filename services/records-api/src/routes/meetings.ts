import { calls, type Database, meetings } from '@cms/db';
import { HttpProblem } from '@cms/http';
import type { CompiledPolicy } from '@cms/policy';
import { and, asc, eq, gt, lt, lte, not, or, type SQL, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { requireRole } from '../auth.ts';
import { classifiedLegs } from '../call-legs.ts';
import { decodeMeetingsCursor, encodeMeetingsCursor } from '../cursor.ts';
import { callInstances, callMeetingKey, instancesOf, levelHistory } from '../meeting-sql.ts';
import { bearerSecurity, cursorParameter, errorResponses, levelParameter } from '../schemas.ts';
import { qualified } from '../sql.ts';
import { toRfc3339 } from '../time.ts';

interface MeetingsQuery {
  limit: number;
  cursor?: string;
  level?: 1 | 2 | 3;
  active?: boolean;
}

const meetingKey = qualified(meetings, meetings.meetingKey);
const callId = qualified(calls, calls.id);
const callStartedAt = qualified(calls, calls.startedAt);
const callEndedAt = qualified(calls, calls.endedAt);
const instancesOfMeeting = instancesOf(meetingKey);

/** At least one instance has no callEnd yet. */
const hasActiveInstance = sql<boolean>`exists (select 1 from ${calls} where (${instancesOfMeeting}) and ${callEndedAt} is null)`;

/**
 * The filter for active=true, driven from the few calls without a callEnd (their meeting keys, one array the
 * primary key is probed with) instead of `hasActiveInstance` per meeting: that EXISTS ran for every meeting from the
 * newest until a page of active ones was found (5,000–12,000 pages, 80–200 ms on 700,000 meetings; bench/scale.ts),
 * and as `meeting_key IN (subquery)` without planner statistics it became a hash join over every meeting. An
 * `= any(array(subquery))` is one index condition on the primary key whatever the statistics say. Same meetings as
 * `hasActiveInstance`: a call is an instance of the meeting its callMeetingKey names.
 */
const activeMeeting = sql<boolean>`${meetingKey} = any(array(select ${callMeetingKey} from ${calls} where ${callEndedAt} is null))`;

/** A column of the meeting's first started instance (what an operator recognises a meeting by). */
function firstInstance(column: SQL): SQL<string | null> {
  const order = sql`${callStartedAt} asc nulls last, ${callId}`;
  return sql<string | null>`(select ${column} from ${calls} where ${instancesOfMeeting} order by ${order} limit 1)`;
}

const meetingColumns = {
  meetingKey: meetings.meetingKey,
  level: meetings.level,
  decisiveLegId: meetings.decisiveLegId,
  updatedAt: meetings.updatedAt,
  active: hasActiveInstance,
  name: firstInstance(qualified(calls, calls.name)),
  coSpace: firstInstance(qualified(calls, calls.coSpace)),
  instanceCount: sql<number>`(select count(*)::int from ${calls} where ${instancesOfMeeting})`,
};

function selectMeetings(db: Database) {
  return db.select(meetingColumns).from(meetings);
}

type MeetingRow = Awaited<ReturnType<typeof selectMeetings>>[number];

function meetingView(row: MeetingRow) {
  return { ...row, updatedAt: toRfc3339(row.updatedAt) };
}

/**
 * The meetings order: latest level decision first, ties by meetingKey. The policy worker moves a meeting to the
 * front whenever it stores its level again, so one that changes while a client pages may show up on a fresh
 * first page instead of a later one.
 */
function afterCursor(cursor: { updatedAt: string; meetingKey: string }): SQL | undefined {
  // The redundant `updatedAt <= cursor` is what Postgres can start the index scan at; the OR alone is only a filter,
  // read from the first meeting on (hundreds of milliseconds deep into 700,000 meetings; bench/scale.ts).
  return and(
    lte(meetings.updatedAt, cursor.updatedAt),
    or(lt(meetings.updatedAt, cursor.updatedAt), and(eq(meetings.updatedAt, cursor.updatedAt), gt(meetings.meetingKey, cursor.meetingKey))),
  );
}

const listQuerystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50, description: 'Meetings per page.' },
    cursor: cursorParameter,
    level: levelParameter,
    active: {
      type: 'boolean',
      description: 'true: meetings with a call instance without a callEnd yet; false: meetings whose instances all ended.',
    },
  },
} as const;

const meetingKeyParams = {
  type: 'object',
  required: ['meetingKey'],
  properties: {
    meetingKey: {
      type: 'string',
      minLength: 1,
      maxLength: 256,
      description: 'A callCorrelator, or the call id of a meeting on one instance.',
    },
  },
} as const;

/** GET /meetings and GET /meetings/:meetingKey: meetings across bridges with their security level and why. */
export async function meetingsRoutes(app: FastifyInstance, options: { db: Database; policy: CompiledPolicy }): Promise<void> {
  const { db, policy } = options;

  app.get<{ Querystring: MeetingsQuery }>(
    '/meetings',
    {
      preHandler: requireRole('viewer'),
      schema: {
        summary: 'Meetings with their security level, keyset-paginated',
        description:
          'Meetings the policy has decided a level for, latest decision first, ties by meetingKey. ' +
          'Pass nextCursor back as cursor for the next page; nextCursor is null on the last page. ' +
          'A meeting whose level changes while you page moves to the front, so it may not appear on a later page.',
        tags: ['meetings'],
        security: bearerSecurity,
        querystring: listQuerystring,
        response: {
          200: {
            description: 'One page of meetings.',
            type: 'object',
            required: ['meetings', 'nextCursor'],
            properties: {
              meetings: { type: 'array', items: { $ref: 'meetingSummary#' } },
              nextCursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const cursor = q.cursor === undefined ? undefined : decodeMeetingsCursor(q.cursor);
      const conditions: (SQL | undefined)[] = [];
      if (q.level !== undefined) conditions.push(eq(meetings.level, q.level));
      if (q.active !== undefined) conditions.push(q.active ? activeMeeting : not(hasActiveInstance));
      if (cursor) conditions.push(afterCursor(cursor));
      const rows = await selectMeetings(db)
        .where(and(...conditions))
        .orderBy(sql`${meetings.updatedAt} desc`, asc(meetings.meetingKey))
        .limit(q.limit + 1);
      const page = rows.slice(0, q.limit).map(meetingView);
      const last = page.at(-1);
      return {
        meetings: page,
        nextCursor: rows.length > q.limit && last ? encodeMeetingsCursor({ updatedAt: last.updatedAt, meetingKey: last.meetingKey }) : null,
      };
    },
  );

  app.get<{ Params: { meetingKey: string } }>(
    '/meetings/:meetingKey',
    {
      preHandler: requireRole('viewer'),
      schema: {
        summary: 'One meeting: level, call instances, classified participants and level history',
        description:
          'Participants are the call legs of every instance, each classified by the configured policy (the rule and list entry ' +
          "behind its level); the meeting level is the worst counted participant's, as the policy worker stored it.",
        tags: ['meetings'],
        security: bearerSecurity,
        params: meetingKeyParams,
        response: {
          200: { description: 'The meeting.', $ref: 'meetingDetail#' },
          ...errorResponses,
          404: {
            description: 'No meeting and no call instance with this key.',
            content: { 'application/problem+json': { schema: { $ref: 'problem#' } } },
          },
        },
      },
    },
    async (request) => {
      const key = request.params.meetingKey;
      const [[meeting], instances, history] = await Promise.all([
        selectMeetings(db).where(eq(meetings.meetingKey, key)),
        callInstances(db, instancesOf(key)),
        levelHistory(db, key),
      ]);
      // The instances' ids as a list, not a subquery: planned without statistics, `call_id IN (subquery)` became a
      // hash join over every leg of the year (seconds on 10 million records; bench/scale.ts).
      const participants = await classifiedLegs(
        db,
        policy,
        instances.map((i) => i.id),
      );
      if (!meeting && instances.length === 0) {
        throw new HttpProblem(
          404,
          'Not Found',
          `No meeting with key "${key}" has been recorded; the key is a call's callCorrelator, or its id when it has none.`,
        );
      }
      // Instances recorded before the policy worker decided a level: the meeting exists, its level is not known yet.
      const summary = meeting
        ? meetingView(meeting)
        : { meetingKey: key, level: null, decisiveLegId: null, updatedAt: null, active: instances.some((i) => i.endedAt === null) };
      return {
        meetingKey: summary.meetingKey,
        level: summary.level,
        decisiveLegId: summary.decisiveLegId,
        updatedAt: summary.updatedAt,
        active: summary.active,
        instances,
        participants,
        levelHistory: history,
      };
    },
  );
}
