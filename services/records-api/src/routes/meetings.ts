import { calls, type Database, meetings } from '@cms/db';
import { HttpProblem } from '@cms/http';
import type { CompiledPolicy } from '@cms/policy';
import { and, asc, desc, eq, gt, lt, lte, not, or, type SQL, sql } from 'drizzle-orm';
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

/**
 * The filter for active=true, driven from the few calls without a callEnd (their meeting keys, one array the
 * primary key is probed with) instead of an EXISTS per meeting: that ran for every meeting from the newest until a
 * page of active ones was found (5,000–12,000 pages, 80–200 ms on 700,000 meetings; bench/scale.ts), and as
 * `meeting_key IN (subquery)` without planner statistics it became a hash join over every meeting. An
 * `= any(array(subquery))` is one index condition on the primary key whatever the statistics say. Same meetings as
 * `instances.active`: a call is an instance of the meeting its callMeetingKey names.
 */
const activeMeeting = sql<boolean>`${meetingKey} = any(array(select ${callMeetingKey} from ${calls} where ${callEndedAt} is null))`;

/**
 * What a meeting summary shows of meeting `key`'s call instances, from one read of them (a lateral subquery: the
 * callCorrelator index and the primary key, then the few rows): whether one has no callEnd yet, the name and coSpace
 * of the first started one (what an operator recognises a meeting by), and how many there are. Four correlated
 * subqueries read the instances four times, and without planner statistics the EXISTS for `active` was an AND with
 * the whole active-calls index (34 pages a meeting); reading the rows once and aggregating leaves the planner nothing
 * to choose. An aggregate without GROUP BY always yields its one row: a meeting without instances gets
 * active false, name and coSpace null, 0.
 */
function instancesSummary(db: Database, key: SQL) {
  const order = sql`${callStartedAt} asc nulls last, ${callId}`;
  return db
    .select({
      active: sql<boolean>`coalesce(bool_or(${callEndedAt} is null), false)`.as('active'),
      name: sql<string | null>`(array_agg(${qualified(calls, calls.name)} order by ${order}))[1]`.as('name'),
      coSpace: sql<string | null>`(array_agg(${qualified(calls, calls.coSpace)} order by ${order}))[1]`.as('co_space'),
      instanceCount: sql<number>`count(*)::int`.as('instance_count'),
    })
    .from(calls)
    .where(instancesOf(key))
    .as('instances');
}

const meetingFields = {
  meetingKey: meetings.meetingKey,
  level: meetings.level,
  decisiveLegId: meetings.decisiveLegId,
  updatedAt: meetings.updatedAt,
};

/** Meeting summaries (the meetings rows with their instances' summary), one read of the instances per row. */
function selectMeetings(db: Database) {
  const instances = instancesSummary(db, meetingKey);
  return {
    instances,
    query: db
      .select({ ...meetingFields, ...instancesColumns(instances) })
      .from(meetings)
      .crossJoinLateral(instances),
  };
}

function instancesColumns(instances: ReturnType<typeof instancesSummary>) {
  return { active: instances.active, name: instances.name, coSpace: instances.coSpace, instanceCount: instances.instanceCount };
}

type MeetingRow = Awaited<ReturnType<typeof selectMeetings>['query']>[number];

function meetingView(row: MeetingRow) {
  return { ...row, updatedAt: toRfc3339(row.updatedAt) };
}

const listOrder = [sql`${meetings.updatedAt} desc`, asc(meetings.meetingKey)];

/**
 * One page of the list. With active=false the instances' summary is the filter, so it is read for each meeting the
 * index scan passes (in list order, until the page is full). Otherwise the page's meetings are chosen first (by the
 * indexes: level and order, the active calls' keys, the cursor) and the summary read for them only: for active=true
 * the matching meetings (one per active call) are sorted before the limit, and a summary joined before the sort was
 * read for every one of them.
 */
async function listPage(
  db: Database,
  conditions: (SQL | undefined)[],
  activeFilter: boolean | undefined,
  rows: number,
): Promise<MeetingRow[]> {
  if (activeFilter === false) {
    const { instances, query } = selectMeetings(db);
    return query
      .where(and(...conditions, not(instances.active)))
      .orderBy(...listOrder)
      .limit(rows);
  }
  if (activeFilter === true) conditions.push(activeMeeting);
  const page = db
    .select(meetingFields)
    .from(meetings)
    .where(and(...conditions))
    .orderBy(...listOrder)
    .limit(rows)
    .as('page');
  const instances = instancesSummary(db, sql`${page.meetingKey}`);
  return db
    .select({
      meetingKey: page.meetingKey,
      level: page.level,
      decisiveLegId: page.decisiveLegId,
      updatedAt: page.updatedAt,
      ...instancesColumns(instances),
    })
    .from(page)
    .crossJoinLateral(instances)
    .orderBy(desc(page.updatedAt), asc(page.meetingKey));
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
      if (cursor) conditions.push(afterCursor(cursor));
      const rows = await listPage(db, conditions, q.active, q.limit + 1);
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
        selectMeetings(db).query.where(eq(meetings.meetingKey, key)),
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
