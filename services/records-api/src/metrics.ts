import type { Database } from '@cms/db';
import { Counter, Gauge, Histogram, type Logger, type Registry } from '@cms/observability';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';

const NAME = 'http_request_duration_seconds';

/** Request duration by method, route pattern (not the raw URL, so ids do not explode the label set) and status. */
export function installRequestMetrics(app: FastifyInstance, registry: Registry): void {
  // A registry shared by several in-process instances (tests) already holds the histogram.
  const histogram =
    (registry.getSingleMetric(NAME) as Histogram<'method' | 'route' | 'status_code'> | undefined) ??
    new Histogram({
      name: NAME,
      help: 'HTTP request duration',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
  app.addHook('onResponse', async (request, reply) => {
    histogram.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}

/** The levels a meeting can be at; `none` is a meeting with nobody counted yet (no message). */
const LEVELS = ['1', '2', '3', 'none'] as const;
/** The count must not hold a connection (or a scrape) long on a big table; a timed-out count publishes nothing. */
const LEVEL_QUERY_TIMEOUT_MS = 2000;
/** Both gauges (and scrapers that come together) share one count this long. */
const LEVEL_QUERY_REUSE_MS = 5000;

interface LevelCounts {
  meetings: Map<string, number>;
  participants: Map<string, number>;
}

/**
 * Active meetings (a call instance without a callEnd) and their participants (legs without a callLegEnd, plus legs
 * only the CMS API showed reconciliation), by the meeting's security level. A participant is counted at the level of
 * the meeting it is in, not by its own classification.
 */
const LEVEL_COUNTS = sql`
  WITH active_calls AS (
    SELECT c.id, coalesce(nullif(c.call_correlator, ''), c.id) AS meeting_key
    FROM calls c
    WHERE c.ended_at IS NULL
  ),
  legs AS (
    SELECT l.call_id, l.id FROM call_legs l WHERE l.ended_at IS NULL
    UNION
    SELECT o.call_id, o.id FROM call_leg_observations o
    WHERE NOT EXISTS (SELECT 1 FROM call_legs l WHERE l.id = o.id)
  )
  SELECT coalesce(m.level::text, 'none') AS level,
         count(DISTINCT a.meeting_key)::int AS meetings,
         count(legs.id)::int AS participants
  FROM active_calls a
  LEFT JOIN meetings m ON m.meeting_key = a.meeting_key
  LEFT JOIN legs ON legs.call_id = a.id
  GROUP BY 1`;

/**
 * meetings_active{level} and meeting_participants_active{level}, counted in Postgres when Prometheus scrapes (a few
 * indexed joins over the active calls, under a statement timeout). When the count fails (Postgres down, timeout)
 * the gauges have no value rather than a stale one, and meeting_level_count_failures_total says why there is a gap.
 */
export function installLevelMetrics(registry: Registry, db: Database, log: Logger): void {
  if (registry.getSingleMetric('meetings_active')) return;
  const failures = new Counter({
    name: 'meeting_level_count_failures_total',
    help: 'Scrapes whose count of meetings and participants by level failed (Postgres unavailable or over its timeout)',
    registers: [registry],
  });
  let failing = false;
  let last: { at: number; result: Promise<LevelCounts | null> } | undefined;

  async function count(): Promise<LevelCounts | null> {
    try {
      const rows = await db.transaction(async (tx) => {
        await tx.execute(sql.raw(`SET LOCAL statement_timeout = ${LEVEL_QUERY_TIMEOUT_MS}`));
        const result = await tx.execute<{ level: string; meetings: number; participants: number }>(LEVEL_COUNTS);
        return result.rows;
      });
      if (failing) log.info('meetings by security level counted again');
      failing = false;
      const counts: LevelCounts = { meetings: new Map(), participants: new Map() };
      for (const row of rows) {
        counts.meetings.set(row.level, row.meetings);
        counts.participants.set(row.level, row.participants);
      }
      return counts;
    } catch (err) {
      failures.inc();
      // Once per outage: every scrape would otherwise repeat what /readyz and the database logs already say.
      if (!failing) log.warn({ err }, 'could not count meetings by security level: the level gauges have no value until it works');
      failing = true;
      return null;
    }
  }

  function shared(): Promise<LevelCounts | null> {
    if (!last || Date.now() - last.at > LEVEL_QUERY_REUSE_MS) last = { at: Date.now(), result: count() };
    return last.result;
  }

  const publish = (gauge: Gauge<'level'>, values: Map<string, number> | undefined) => {
    gauge.reset();
    if (values) for (const level of LEVELS) gauge.set({ level }, values.get(level) ?? 0);
  };
  new Gauge({
    name: 'meetings_active',
    help: 'Meetings with a call instance not ended, by security level (none = nobody counted yet); counted at scrape',
    labelNames: ['level'],
    registers: [registry],
    async collect() {
      publish(this, (await shared())?.meetings);
    },
  });
  new Gauge({
    name: 'meeting_participants_active',
    help: 'Participants (call legs not ended) in active meetings, by the security level of their meeting; counted at scrape',
    labelNames: ['level'],
    registers: [registry],
    async collect() {
      publish(this, (await shared())?.participants);
    },
  });
}
