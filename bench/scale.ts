/**
 * npm run bench:scale -- [--records 10000000] [--database cms_scale_10m] [--regenerate] [--iterations 40]
 *   [--only generate|queries|ingest|replicas|meeting] [--match 'calls: deep|meetings: active'] [--ingest-posts 20000]
 *   [--ingest-rounds 2]
 *
 * Runs every part of issue #13 in turn unless --only names one: the database (generated when missing), ingest on it
 * against an empty one, every API query on it, then one against two replicas of each service (bench/replicas.ts)
 * and each stage alone against two of it (bench/replica-capacity.ts; results of both in bench/results/replicas.md),
 * and a meeting of 1,000 participants over 4 bridges (bench/large-meeting.ts, results in
 * bench/results/large-meeting.md). Time on a quiet 2-core machine: about 5 min to generate 10 million records
 * (once), then about 5 min for the rest (queries and ingest 2, replicas 1, each stage alone 1, the large meeting 2);
 * a busy machine takes several times as long.
 *
 * Storage at scale: a database of a year of a 20-bridge cluster (10 million records by default), generated once by
 * a direct bulk loader (bench/scale-data.ts: COPY, the rows the worker would store) and kept under a fixed name
 * between runs. Then every records, calls and meetings query the records API offers (first page and a deep page, each
 * filter) through the real records-api process over HTTP: p50/p99 per query, first with the planner statistics of
 * the bench's tables removed (as after a bulk load or on a partition nobody has analysed yet), then after ANALYZE,
 * each with the EXPLAIN (ANALYZE) plan of the SQL the route ran. Goal: p99 ≤ 50 ms for each. Figures and plans go
 * to bench/results/scale.md with the commit, command line and Postgres settings. A benchmark: it asserts nothing.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '@cms/config';
import { createDatabase, ensureDatabase, pg, runMigrations } from '@cms/db';
import { createLogger } from '@cms/observability';
import { buildRecordsApi } from '../services/records-api/src/app.ts';
import { encodeCallsCursor, encodeMeetingsCursor, encodeRecordsCursor } from '../services/records-api/src/cursor.ts';
import { runLargeMeeting } from './large-meeting.ts';
import { machineDescription } from './lib/machine.ts';
import { percentile } from './lib/message-latency.ts';
import { startPrivateRedis } from './lib/private-redis.ts';
import { type Child, freePort } from './lib/processes.ts';
import { codeVersion, commandLine, loadAverage, niceness, postgresSettings } from './lib/run-metadata.ts';
import { runReplicaCapacity } from './replica-capacity.ts';
import { runReplicas } from './replicas.ts';
import { CopyStream, checkFidelity, type Generated, generate, readGenerated } from './scale-data.ts';
import { compareIngest, type IngestRun } from './scale-ingest.ts';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '10000000' },
    database: { type: 'string' },
    regenerate: { type: 'boolean', default: false },
    iterations: { type: 'string', default: '40' },
    only: { type: 'string' },
    // A regular expression on the query names: rerun only the queries a change affects.
    match: { type: 'string' },
    'ingest-posts': { type: 'string', default: '20000' },
    // Pairs of ingest runs (empty, large): more pairs average out more of the other work on a shared machine.
    'ingest-rounds': { type: 'string', default: '2' },
    seed: { type: 'string', default: '13' },
  },
});
const target = Number(args.records);
const database = args.database ?? (target === 10_000_000 ? 'cms_scale_10m' : `cms_scale_${target}`);
const iterations = Number(args.iterations);
const GOAL_MS = 50;
const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const url = (() => {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
})();
const adminUrl = (() => {
  const u = new URL(base);
  u.pathname = '/postgres';
  return u.toString();
})();
const RESULTS = 'bench/results/scale.md';
const out: string[] = [];
const say = (line = '') => {
  process.stdout.write(`${line}\n`);
  out.push(line);
};

async function withClient<T>(connection: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: connection });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const RECORD_COLUMNS = [
  'session',
  'correlator_index',
  'record_index',
  'call_bridge',
  'node',
  'type',
  'time',
  'num_preceeding_records_missing',
  'call_id',
  'call_leg_id',
  'call_correlator',
  'raw',
  'received_at',
];

/** Generates the database: migrations, every month's partition, COPY without cdr_records' indexes, then the indexes. */
async function generateDatabase(): Promise<Generated> {
  const started = performance.now();
  await withClient(adminUrl, async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(database)} WITH (FORCE)`);
  });
  await ensureDatabase(url);
  await runMigrations(url);
  const end = Date.now();
  const seed = Number(args.seed);
  const indexDefs = await withClient(url, async (client) => {
    // Every month of the year, as the worker would have created them month by month.
    await client.query(
      `SELECT cms_month_partition(t, c, m) FROM (VALUES ('cdr_records', 'time'), ('meeting_level_changes', 'at'), ('cms_writes', 'at')) AS p(t, c),
       generate_series(now() - interval '366 days', now() + interval '2 months', interval '1 month') AS m`,
    );
    // A bulk load builds indexes once at the end instead of row by row (10 indexes, random GUID keys).
    const { rows } = await client.query<{ name: string; def: string; constraint: string | null }>(
      `SELECT i.relname AS name, pg_get_indexdef(i.oid) AS def, c.conname AS constraint
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid
       WHERE x.indrelid = 'cdr_records'::regclass`,
    );
    for (const row of rows) {
      if (row.constraint) await client.query(`ALTER TABLE cdr_records DROP CONSTRAINT ${client.escapeIdentifier(row.constraint)}`);
      else await client.query(`DROP INDEX ${client.escapeIdentifier(row.name)}`);
    }
    // calls.level copies meetings.level by triggers (migration 0011). calls and meetings are loaded by two concurrent
    // COPYs, neither seeing the other's rows: the copy is set once both are in (below), as the migration's backfill does.
    await client.query('ALTER TABLE calls DISABLE TRIGGER USER');
    await client.query('ALTER TABLE meetings DISABLE TRIGGER USER');
    return rows;
  });

  const records = new CopyStream(url, 'cdr_records', RECORD_COLUMNS);
  const streams = {
    calls: new CopyStream(url, 'calls', [
      'id',
      'node',
      'call_bridge',
      'session',
      'name',
      'call_type',
      'co_space',
      'call_correlator',
      'started_at',
      'ended_at',
      'call_legs_completed',
      'call_legs_max_active',
      'duration_seconds',
      'updated_at',
    ]),
    legs: new CopyStream(url, 'call_legs', [
      'id',
      'call_id',
      'node',
      'call_bridge',
      'session',
      'display_name',
      'remote_party',
      'type',
      'direction',
      'state',
      'started_at',
      'connected_at',
      'ended_at',
      'end_reason',
      'duration_seconds',
    ]),
    meetings: new CopyStream(url, 'meetings', ['meeting_key', 'level', 'decisive_leg_id', 'updated_at']),
    levelChanges: new CopyStream(url, 'meeting_level_changes', ['meeting_key', 'at', 'old_level', 'new_level', 'cause_leg_id', 'reason']),
    messages: new CopyStream(url, 'call_messages', [
      'call_id',
      'node',
      'meeting_key',
      'level',
      'message_text',
      'message_position',
      'message_duration',
      'version',
      'desired_at',
      'applied_version',
      'applied_at',
      'status',
    ]),
    writes: new CopyStream(url, 'cms_writes', [
      'at',
      'node',
      'kind',
      'call_id',
      'target',
      'desired_text',
      'version',
      'status',
      'http_status',
      'attempts',
      'latency_ms',
    ]),
  };
  const fidelitySample: Parameters<typeof checkFidelity>[0] = [];
  let lastReport = performance.now();
  const landmarks = await generate(
    { records: target, seed, end },
    (r, xml) => {
      const c = r.record;
      if (records.rows % 100_003 === 0) fidelitySample.push({ session: r.session, callBridge: r.callBridge, record: c, xml: xml() });
      if (records.rows % 1_000_000 === 999_999) {
        const now = performance.now();
        process.stdout.write(
          `  ${(records.rows + 1).toLocaleString('en')} records (${Math.round(1_000_000 / ((now - lastReport) / 1000))}/s)\n`,
        );
        lastReport = now;
      }
      return records.write([
        r.session,
        c.correlatorIndex,
        c.recordIndex,
        r.callBridge,
        r.node,
        c.type,
        c.time,
        c.numPreceedingRecordsMissing,
        c.callId,
        c.callLegId,
        c.callCorrelator,
        JSON.stringify(c.raw),
        new Date(Date.parse(c.time) + 1000).toISOString(),
      ]);
    },
    {
      calls: (row) => streams.calls.write(row),
      legs: (row) => streams.legs.write(row),
      meetings: (row) => streams.meetings.write(row),
      levelChanges: (row) => streams.levelChanges.write(row),
      messages: (row) => streams.messages.write(row),
      writes: (row) => streams.writes.write(row),
    },
  );
  await Promise.all([records.end(), ...Object.values(streams).map((s) => s.end())]);
  checkFidelity(fidelitySample);
  const loaded = performance.now();
  process.stdout.write('  indexes...\n');
  await withClient(url, async (client) => {
    await client.query(
      `UPDATE calls c SET level = m.level FROM meetings m WHERE m.meeting_key = coalesce(nullif(c.call_correlator, ''), c.id) AND m.level IS NOT NULL`,
    );
    await client.query('ALTER TABLE calls ENABLE TRIGGER USER');
    await client.query('ALTER TABLE meetings ENABLE TRIGGER USER');
    await client.query("SET maintenance_work_mem = '512MB'");
    for (const row of indexDefs) {
      if (row.constraint) {
        const columns = /\((.*)\)$/.exec(row.def)?.[1];
        await client.query(`ALTER TABLE cdr_records ADD CONSTRAINT ${client.escapeIdentifier(row.constraint)} PRIMARY KEY (${columns})`);
      } else {
        await client.query(row.def.replace(' ON ONLY ', ' ON '));
      }
    }
    // The visibility map, as a table that has been up a while has it (index-only scans); no ANALYZE here.
    await client.query('VACUUM');
  });
  const done = performance.now();
  const generated: Generated = {
    records: target,
    seed,
    end: new Date(end).toISOString(),
    seconds: {
      generate: Math.round((loaded - started) / 1000),
      indexes: Math.round((done - loaded) / 1000),
      total: Math.round((done - started) / 1000),
    },
    commit: codeVersion(),
    landmarks: { ...landmarks, coSpaces: landmarks.coSpaces.slice(0, 3) },
  };
  await withClient(adminUrl, async (admin) => {
    await admin.query(`COMMENT ON DATABASE ${admin.escapeIdentifier(database)} IS ${admin.escapeLiteral(JSON.stringify(generated))}`);
  });
  return generated;
}

interface Query {
  name: string;
  path: string;
}

/** Every list query the API offers, first page and a deep page, each filter; and the detail routes. */
async function queries(generated: Generated): Promise<Query[]> {
  const L = generated.landmarks;
  return withClient(url, async (client) => {
    const one = async (sql: string, params: unknown[] = []) => (await client.query(sql, params)).rows[0];
    const { max } = await one('SELECT max(id)::bigint AS max FROM cdr_records');
    const middleId = Math.floor(Number(max) / 2);
    const session = L.sessions[Math.floor(L.sessions.length / 2)] as (typeof L.sessions)[number];
    const { id: sessionMiddle } = await one(
      'SELECT id::bigint FROM cdr_records WHERE session = $1 AND correlator_index = (SELECT max(correlator_index) / 2 FROM cdr_records WHERE session = $1)',
      [session.session],
    );
    const day = new Date(Date.parse(generated.end) - 100 * 86_400_000);
    const from = day.toISOString();
    const to = new Date(day.getTime() + 86_400_000).toISOString();
    const { id: dayMiddle } = await one('SELECT id::bigint FROM cdr_records WHERE time >= $1 ORDER BY time LIMIT 1 OFFSET 10000', [from]);
    const asc = (id: number) => encodeRecordsCursor({ order: 'asc', id });
    const desc = (id: number) => encodeRecordsCursor({ order: 'desc', id });
    const call = L.sampleCalls[0] as string;
    const leg = L.sampleLegs[0] as string;
    const correlator = L.sampleCorrelators[0] as string;
    const callsMiddle = await one(
      `SELECT started_at, id FROM calls ORDER BY started_at DESC NULLS LAST, id OFFSET (SELECT count(*) / 2 FROM calls) LIMIT 1`,
    );
    const callsCursor = encodeCallsCursor({ startedAt: (callsMiddle.started_at as Date).toISOString(), id: callsMiddle.id });
    const meetingsMiddle = await one(
      `SELECT updated_at, meeting_key FROM meetings ORDER BY updated_at DESC, meeting_key OFFSET (SELECT count(*) / 2 FROM meetings) LIMIT 1`,
    );
    const meetingsCursor = encodeMeetingsCursor({
      updatedAt: (meetingsMiddle.updated_at as Date).toISOString(),
      meetingKey: meetingsMiddle.meeting_key,
    });
    const activeCalls = await client.query(
      `SELECT started_at, id FROM calls WHERE ended_at IS NULL ORDER BY started_at DESC NULLS LAST, id`,
    );
    const lastActive = activeCalls.rows.at(-1);
    const activeCursor = lastActive
      ? encodeCallsCursor({ startedAt: (lastActive.started_at as Date).toISOString(), id: lastActive.id })
      : callsCursor;
    const node = L.nodes[3] as string;
    const popularSpace = L.coSpaces[0] as string;
    const rareSpace = L.coSpaces[1] as string;
    const q = (name: string, path: string): Query => ({ name, path });
    const list: Query[] = [
      q('records: first page (asc)', '/api/v1/records'),
      q('records: first page (desc)', '/api/v1/records?order=desc'),
      q('records: deep page (asc)', `/api/v1/records?cursor=${asc(middleId)}`),
      q('records: deep page (desc)', `/api/v1/records?order=desc&cursor=${desc(middleId)}`),
      q('records: type=callLegEnd', '/api/v1/records?type=callLegEnd&order=desc'),
      q('records: type=callLegEnd deep', `/api/v1/records?type=callLegEnd&order=desc&cursor=${desc(middleId)}`),
      q(`records: type=${L.rareType} (rare)`, `/api/v1/records?type=${L.rareType}&order=desc`),
      q(`records: type=${L.rareType} (rare) deep`, `/api/v1/records?type=${L.rareType}&cursor=${asc(middleId)}`),
      q('records: type=streamingEnd asc', `/api/v1/records?type=streamingEnd`),
      q('records: type unknown (400 check)', `/api/v1/records?type=someFutureType`),
      q('records: callId', `/api/v1/records?callId=${call}`),
      q('records: callLegId', `/api/v1/records?callLegId=${leg}`),
      q('records: callCorrelator', `/api/v1/records?callCorrelator=${correlator}`),
      q('records: session', `/api/v1/records?session=${session.session}`),
      q('records: session deep', `/api/v1/records?session=${session.session}&cursor=${asc(Number(sessionMiddle))}`),
      q('records: session desc', `/api/v1/records?session=${session.session}&order=desc`),
      q('records: node', `/api/v1/records?node=${node}&order=desc`),
      q('records: node deep', `/api/v1/records?node=${node}&cursor=${asc(middleId)}`),
      q('records: node absent', '/api/v1/records?node=cms99'),
      q('records: from/to one day (asc)', `/api/v1/records?from=${from}&to=${to}`),
      q('records: from/to one day (desc)', `/api/v1/records?from=${from}&to=${to}&order=desc`),
      q('records: from/to one day deep', `/api/v1/records?from=${from}&to=${to}&cursor=${asc(Number(dayMiddle))}`),
      q('records: from (last 100 days, asc)', `/api/v1/records?from=${from}`),
      q('records: to (before 100 days ago, desc)', `/api/v1/records?to=${from}&order=desc`),
      q('records: node + type + from/to', `/api/v1/records?node=${node}&type=callLegStart&from=${from}&to=${to}`),
      q('records compat: page 1', '/api/v1/records/1'),
      q('records compat: page 50', '/api/v1/records/50'),
      q('records compat: page 5000 (offset 100,000)', '/api/v1/records/5000'),
      q('calls: first page', '/api/v1/calls'),
      q('calls: deep page', `/api/v1/calls?cursor=${callsCursor}`),
      q('calls: active', '/api/v1/calls?active=true'),
      q('calls: active, past the last', `/api/v1/calls?active=true&cursor=${activeCursor}`),
      q('calls: ended', '/api/v1/calls?active=false'),
      q('calls: node', `/api/v1/calls?node=${node}`),
      q('calls: node deep', `/api/v1/calls?node=${node}&cursor=${callsCursor}`),
      q('calls: node absent', '/api/v1/calls?node=cms99'),
      q('calls: coSpace (popular)', `/api/v1/calls?coSpace=${popularSpace}`),
      q('calls: coSpace (rare)', `/api/v1/calls?coSpace=${rareSpace}`),
      q('calls: callCorrelator', `/api/v1/calls?callCorrelator=${correlator}`),
      q('calls: level=1', '/api/v1/calls?level=1'),
      q('calls: level=1 deep', `/api/v1/calls?level=1&cursor=${callsCursor}`),
      q('calls: detail', `/api/v1/calls/${call}`),
      q('meetings: first page', '/api/v1/meetings'),
      q('meetings: deep page', `/api/v1/meetings?cursor=${meetingsCursor}`),
      q('meetings: level=2', '/api/v1/meetings?level=2'),
      q('meetings: level=2 deep', `/api/v1/meetings?level=2&cursor=${meetingsCursor}`),
      q('meetings: active', '/api/v1/meetings?active=true'),
      q('meetings: active=false', '/api/v1/meetings?active=false'),
      q('meetings: active=false deep', `/api/v1/meetings?active=false&cursor=${meetingsCursor}`),
      q('meetings: detail', `/api/v1/meetings/${correlator}`),
    ];
    return list;
  });
}

const TOKEN = 'bench-scale-api-token-0123456789';

/** The SQL each route runs, captured from an in-process API on a pool that records its queries, then EXPLAINed. */
interface Explained {
  plan: string;
  /** Planning plus execution time of the route's statements, as EXPLAIN ANALYZE measured them in Postgres. */
  dbMs: number;
  /** Shared buffers (8 kB pages) the statements' plans touched: the work done, whatever else runs on the machine. */
  pages: number;
}

async function explainAll(list: Query[]): Promise<Map<string, Explained>> {
  const db = createDatabase(url, { max: 2, applicationName: 'bench-scale-explain' });
  const captured: { text: string; values: unknown[] }[] = [];
  const pool = db.$client as unknown as { query: (...a: unknown[]) => unknown };
  const original = pool.query.bind(pool);
  pool.query = (...a: unknown[]) => {
    const [first, second] = a as [string | { text: string; values?: unknown[] }, unknown[] | undefined];
    if (typeof first === 'string') captured.push({ text: first, values: second ?? [] });
    else captured.push({ text: first.text, values: second ?? first.values ?? [] });
    return original(...a);
  };
  const config = loadConfig({ env: {}, overrides: { api: { token: TOKEN }, database: { url } } });
  const api = await buildRecordsApi({ config, db, log: createLogger('records-api', 'silent') });
  const plans = new Map<string, Explained>();
  try {
    for (const query of list) {
      captured.length = 0;
      await api.app.inject({ method: 'GET', url: query.path, headers: { authorization: `Bearer ${TOKEN}` } });
      const statements = [...captured];
      const parts: string[] = [];
      let dbMs = 0;
      let pages = 0;
      for (const s of statements) {
        // As the services' connections (libs/db: jit off, no parallel workers), so the plan is the one the route ran.
        const { rows } = await withClient(url, async (c) => {
          await c.query('SET jit = off');
          await c.query('SET max_parallel_workers_per_gather = 0');
          return c.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${s.text}`, s.values);
        });
        const plan = rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
        for (const m of plan.matchAll(/(?:Planning|Execution) Time: ([\d.]+) ms/g)) dbMs += Number(m[1]);
        // The first Buffers line is the top plan node's, which includes every node under it.
        const top = /Buffers: shared([^\n]*)/.exec(plan)?.[1] ?? '';
        for (const m of top.matchAll(/(?:hit|read)=(\d+)/g)) pages += Number(m[1]);
        // Long IN lists of GUIDs say nothing about the plan.
        parts.push(
          `${s.text}\n${plan}`.replace(/'\{[^}]{200,}\}'/g, (list) => `'{${list.slice(2, 40)}… ${list.split(',').length} values}'`),
        );
      }
      plans.set(query.name, { plan: parts.join('\n\n'), dbMs, pages });
    }
  } finally {
    await api.close();
    await db.$client.end();
  }
  return plans;
}

interface Timing {
  name: string;
  status: number;
  p50: number;
  p99: number;
  max: number;
}

async function timeAll(apiUrl: string, list: Query[]): Promise<Timing[]> {
  const timings: Timing[] = [];
  for (const query of list) {
    const samples: number[] = [];
    let status = 0;
    for (let i = 0; i < iterations + 3; i++) {
      const t0 = performance.now();
      const response = await fetch(`${apiUrl}${query.path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      await response.arrayBuffer();
      const ms = performance.now() - t0;
      status = response.status;
      if (i >= 3) samples.push(ms);
    }
    samples.sort((a, b) => a - b);
    timings.push({ name: query.name, status, p50: percentile(samples, 50), p99: percentile(samples, 99), max: samples.at(-1) ?? 0 });
  }
  return timings;
}

function table(timings: Timing[], plans: Map<string, Explained>): string[] {
  const lines = [
    '| query | HTTP | p50 ms | p99 ms | max ms | p99 ≤ 50 ms | Postgres ms (EXPLAIN ANALYZE: planning + execution) | pages touched |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const t of timings)
    lines.push(
      `| ${t.name} | ${t.status} | ${t.p50.toFixed(1)} | ${t.p99.toFixed(1)} | ${t.max.toFixed(1)} | ${t.p99 <= GOAL_MS ? 'yes' : '**no**'} | ${plans.get(t.name)?.dbMs.toFixed(1) ?? '?'} | ${plans.get(t.name)?.pages ?? '?'} |`,
    );
  return lines;
}

async function removeStatistics(): Promise<void> {
  await withClient(url, async (client) => {
    await client.query(`DELETE FROM pg_statistic WHERE starelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)`);
  });
}

/** The real records-api process (as bench/lib's startService, with time to start on a machine others keep busy). */
async function startApi(env: Record<string, string>, readyUrl: string): Promise<Child> {
  const child = spawn(process.execPath, ['services/records-api/src/main.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error('records-api exited during start-up');
    try {
      if ((await fetch(readyUrl)).ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error('records-api not ready within 120 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    name: 'records-api',
    process: child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The parts that need no large database: their own benchmarks, each appending to its own results file. */
async function replicasAndLargeMeeting(parts: ('replicas' | 'meeting')[]): Promise<void> {
  if (parts.includes('replicas')) {
    say('Replicas: one against two of each service (bench/replicas.ts)...');
    const { speedup } = await runReplicas({ log: say });
    if (speedup) say(`Two replicas over one: POSTs x${speedup.posts.toFixed(2)}, records x${speedup.records.toFixed(2)}.`);
    // The whole chain keeps both cores busy with one replica of each: each stage alone shows what a second adds.
    say('Each stage alone: one against two replicas (bench/replica-capacity.ts)...');
    await runReplicaCapacity({ log: say });
  }
  if (parts.includes('meeting')) {
    say('A meeting of 1,000 participants over 4 bridges (bench/large-meeting.ts)...');
    const { writesPerChange, ceilingViolations } = await runLargeMeeting({ log: say });
    say(`CMS writes per change ${writesPerChange?.toFixed(2) ?? '?'}, ceiling violations ${ceilingViolations}.`);
  }
}
if (args.only === 'replicas' || args.only === 'meeting') {
  await replicasAndLargeMeeting([args.only]);
  process.exit(0);
}

const runStarted = new Date();
const loadAtStart = loadAverage();
let generated = await withClient(adminUrl, (admin) => readGenerated(admin, database));
let generatedNow = false;
if (!generated || generated.records !== target || args.regenerate) {
  say(`Generating ${database} (${target.toLocaleString('en')} records)...`);
  generated = await generateDatabase();
  generatedNow = true;
} else {
  // A kept database follows the schema: migrations added since it was generated (new indexes) are applied to it.
  await runMigrations(url);
}
say(
  `Database ${database}: ${generated.records.toLocaleString('en')} records, generated at ${generated.commit} in ${generated.seconds.total} s ` +
    `(${generated.seconds.generate} s generating and COPY, ${generated.seconds.indexes} s indexes and VACUUM)${generatedNow ? '' : ', kept from an earlier run'}.`,
);
if (args.only === 'generate') process.exit(0);

/** Item 3 of the issue: ingest and storage rate on this database against an empty one. */
async function ingestSection(): Promise<string[]> {
  const redis = await startPrivateRedis();
  try {
    const posts = Number(args['ingest-posts']);
    say(`Ingest: ${posts} single-record POSTs per run, 32 sessions, empty database and ${database} alternately...`);
    const { empty, large } = await compareIngest(url, redis.url, posts, Number(args['ingest-rounds']));
    const row = (label: string, r: IngestRun) =>
      `| ${label} | ${r.postsPerSecond.toFixed(0)} | ${r.recordsPerSecond.toFixed(0)} | ${r.cpuPerPost?.map(([n, us]) => `${n} ${us.toFixed(0)} µs`).join(', ') ?? '?'} |`;
    const mean = (runs: IngestRun[], key: 'postsPerSecond' | 'recordsPerSecond') => runs.reduce((a, r) => a + r[key], 0) / runs.length;
    const ratio = mean(large, 'recordsPerSecond') / mean(empty, 'recordsPerSecond');
    const cpuTotal = (runs: IngestRun[]) =>
      runs.reduce((a, r) => a + (r.cpuPerPost ?? []).reduce((t, [, us]) => t + us, 0), 0) / runs.length;
    const lines = [
      '| database | POSTs/s acknowledged | records/s in Postgres | CPU per POST |',
      '|---|---|---|---|',
      ...empty.flatMap((r, i) => [row(`empty (run ${i + 1})`, r), row(`${database} (run ${i + 1})`, large[i] as IngestRun)]),
      '',
      `Storage rate on ${database}: ${(ratio * 100).toFixed(0)} % of the empty database's (mean of ${empty.length} runs each; goal ≥ 90 %). ` +
        `CPU per POST of the services and this database's Postgres backends (less sensitive to the other work on the machine than the rates): ` +
        `${cpuTotal(large).toFixed(0)} µs against ${cpuTotal(empty).toFixed(0)} µs (${((cpuTotal(large) / cpuTotal(empty)) * 100).toFixed(0)} %).`,
    ];
    for (const line of lines) say(line);
    return lines;
  } finally {
    await redis.stop();
  }
}
if (args.only === 'ingest') {
  const lines = await ingestSection();
  appendFileSync(
    RESULTS,
    [
      `## ${new Date().toISOString()}: ingest on ${database}`,
      '',
      `- Commit ${codeVersion()}; \`${commandLine('bench/scale.ts')}\`; ${niceness()}`,
      `- ${machineDescription()}`,
      `- ${await postgresSettings(url)}`,
      `- Load average at end ${loadAverage()}`,
      '',
      ...lines,
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const sizes = await withClient(url, async (client) => {
  const { rows } = await client.query(
    `SELECT (SELECT count(*) FROM cdr_records)::bigint AS records, (SELECT count(*) FROM calls)::bigint AS calls, (SELECT count(*) FROM call_legs)::bigint AS legs,
            (SELECT count(*) FROM meetings)::bigint AS meetings, pg_size_pretty(pg_database_size(current_database())) AS size,
            (SELECT count(*) FROM pg_inherits WHERE inhparent = 'cdr_records'::regclass)::int AS partitions`,
  );
  return rows[0];
});
const list = (await queries(generated)).filter((q) => args.match === undefined || new RegExp(args.match).test(q.name));
const apiPort = await freePort();
const metricsPort = await freePort();
let api: Child | undefined;
try {
  api = await startApi(
    {
      DATABASE_URL: url,
      API_TOKEN: TOKEN,
      API_PORT: String(apiPort),
      API_METRICS_PORT: String(metricsPort),
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    },
    `http://127.0.0.1:${metricsPort}/readyz`,
  );
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  await removeStatistics();
  say('Without planner statistics (removed from pg_statistic):');
  const before = await timeAll(apiUrl, list);
  const plansBefore = await explainAll(list);
  for (const line of table(before, plansBefore)) say(line);
  await withClient(url, (c) => c.query('ANALYZE'));
  say('After ANALYZE:');
  const after = await timeAll(apiUrl, list);
  const plansAfter = await explainAll(list);
  for (const line of table(after, plansAfter)) say(line);
  const missed = [...before, ...after].filter((t) => t.p99 > GOAL_MS);

  const header = [
    `## ${runStarted.toISOString()}: ${sizes.records} records`,
    '',
    `- Commit ${codeVersion()}; \`${commandLine('bench/scale.ts')}\`; ${niceness()}`,
    `- ${machineDescription()}`,
    `- ${await postgresSettings(url)}`,
    `- Database \`${database}\`: ${sizes.records} records in ${sizes.partitions} partitions of cdr_records, ${sizes.calls} calls, ${sizes.legs} call legs, ${sizes.meetings} meetings; ${sizes.size}. ` +
      `Generated once (commit ${generated.commit}) in ${generated.seconds.total} s: ${generated.seconds.generate} s generating and COPY, ${generated.seconds.indexes} s building indexes and VACUUM.`,
    `- ${iterations} timed requests per query after 3 warm-up ones, one at a time, through the records-api process over HTTP; load average ${loadAtStart} at start, ${loadAverage()} at end.`,
    `- Goal p99 ≤ ${GOAL_MS} ms: ${missed.length === 0 ? 'met by every query, with and without statistics' : `missed by ${missed.length}: ${[...new Set(missed.map((m) => m.name))].join('; ')}`}.`,
    '',
    '### Without planner statistics',
    '',
    ...table(before, plansBefore),
    '',
    '### After ANALYZE',
    '',
    ...table(after, plansAfter),
    '',
  ];
  // Every plan goes to the output; the results file keeps those of the queries that missed the goal (first 80 lines
  // of each statement's plan), so it stays readable.
  const planBlocks = (title: string, plans: Map<string, Explained>, timings: Timing[]) => {
    const missing = timings.filter((t) => t.p99 > GOAL_MS).map((t) => t.name);
    if (!missing.length) return [];
    return [
      `<details><summary>${title}</summary>`,
      '',
      ...missing.flatMap((name) => {
        const plan = (plans.get(name)?.plan ?? '')
          .split('\n\n')
          .map((statement) => statement.split('\n').slice(0, 80).join('\n'))
          .join('\n\n');
        return [`#### ${name}`, '', '```', plan, '```', ''];
      }),
      '</details>',
      '',
    ];
  };
  for (const [name, { plan }] of plansBefore) process.stdout.write(`\n== ${name} (without statistics)\n${plan}\n`);
  await api.stop();
  const ingest =
    args.only === 'queries' ? [] : ['### Ingest and storage rate against an empty database', '', ...(await ingestSection()), ''];
  const text = [
    ...header,
    ...ingest,
    ...planBlocks('EXPLAIN ANALYZE plans of the queries over the goal, without statistics', plansBefore, before),
    ...planBlocks('EXPLAIN ANALYZE plans of the queries over the goal, after ANALYZE', plansAfter, after),
  ].join('\n');
  for (const [name, { plan }] of plansAfter) process.stdout.write(`\n== ${name} (after ANALYZE)\n${plan}\n`);
  if (!existsSync(RESULTS))
    writeFileSync(RESULTS, '# Scale benchmark results\n\nWritten by `npm run bench:scale` (bench/scale.ts); newest last.\n\n');
  appendFileSync(RESULTS, `${text}\n`);
  say(`Results appended to ${RESULTS}.`);
} finally {
  await api?.stop();
}
if (args.only === undefined) await replicasAndLargeMeeting(['replicas', 'meeting']);
