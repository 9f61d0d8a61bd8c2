/**
 * npm run bench:ingest -- [--posts N] [--concurrency C] [--records-per-post R] [--redis-url URL]
 *   [--url URL --token T --database-url U]
 *
 * Posts N CMS-like CDR batches at concurrency C (C keep-alive connections, one POST at a time on each, as Call
 * Bridges send) and reports POSTs/s acknowledged, ack latency p50/p99, and records/s durably visible in Postgres.
 * Without --url it starts cdr-ingest and policy-worker itself on a fresh database and queue prefix, with a private
 * redis-server persisting as deployed (AOF, appendfsync everysec) unless --redis-url names one. Each results block
 * records the commit, the command, the Redis and Postgres settings and the load average at start and end.
 * Figures go to bench/results/ingest.md. This is a benchmark, not a test: it asserts nothing.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pg } from '@cms/db';
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';
import { cpuPerUnit, type ProcessGroup, readCpu } from './lib/cpu-usage.ts';
import { machineDescription } from './lib/machine.ts';
import { MEETING_PARTICIPANTS, meetingRecordXml } from './lib/meeting-records.ts';
import { type PrivateRedis, startPrivateRedis } from './lib/private-redis.ts';
import { type Child, freePort, freshDatabase, startService } from './lib/processes.ts';
import { codeVersion, commandLine, loadAverage, niceness, postgresSettings, redisSettings } from './lib/run-metadata.ts';

const { values: args } = parseArgs({
  options: {
    posts: { type: 'string', default: '40000' },
    concurrency: { type: 'string', default: '32' },
    'records-per-post': { type: 'string', default: '1' },
    url: { type: 'string' },
    token: { type: 'string' },
    'database-url': { type: 'string' },
    /** Use this Redis instead of a private one with AOF everysec (its persistence settings are reported). */
    'redis-url': { type: 'string' },
    warmup: { type: 'string', default: '2000' },
    /** Measure acknowledgements only (no worker, no Postgres): isolates ingest + Redis. */
    'ack-only': { type: 'boolean', default: false },
  },
});
const posts = Number(args.posts);
const concurrency = Number(args.concurrency);
const perPost = Number(args['records-per-post']);
const warmup = Number(args.warmup);
const ackOnly = args['ack-only'];

let ingestUrl = args.url;
let token = args.token ?? process.env.INGEST_TOKEN ?? '';
let databaseUrl = args['database-url'] ?? process.env.DATABASE_URL ?? '';
const children: Child[] = [];
let dropDatabase: (() => Promise<void>) | undefined;
let privateRedis: PrivateRedis | null = null;
let redisUrl = args['redis-url'];
const startedAt = new Date();
const loadAtStart = loadAverage();

if (!ingestUrl) {
  const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const db = await freshDatabase(base, 'cms_bench');
  databaseUrl = db.url;
  dropDatabase = db.drop;
  token = 'bench-ingest-token-0123456789';
  const [ingestPort, ingestMetricsPort, workerPort] = [await freePort(), await freePort(), await freePort()];
  if (!redisUrl) {
    privateRedis = await startPrivateRedis();
    redisUrl = privateRedis.url;
  }
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: `bench_${Date.now().toString(36)}`,
    INGEST_TOKEN: token,
    INGEST_PORT: String(ingestPort),
    // A free one, not the default 9100, so a bench runs beside `npm start` or another bench.
    INGEST_METRICS_PORT: String(ingestMetricsPort),
    POLICY_WORKER_PORT: String(workerPort),
    INGEST_HOST: '127.0.0.1',
    POLICY_WORKER_HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  };
  try {
    children.push(await startService('cdr-ingest', env, `http://127.0.0.1:${ingestPort}/readyz`));
    if (!ackOnly) children.push(await startService('policy-worker', env, `http://127.0.0.1:${workerPort}/readyz`));
  } catch (err) {
    // Leave nothing running behind: a started cdr-ingest, the database, the private Redis.
    for (const child of children.reverse()) await child.stop();
    await dropDatabase();
    await privateRedis?.stop();
    throw err;
  }
  ingestUrl = `http://127.0.0.1:${ingestPort}`;
}
if (!databaseUrl && !ackOnly) throw new Error('--database-url (or DATABASE_URL) is needed to measure records in Postgres');

/**
 * What one Call Bridge sends over a meeting's life, one record at a time: callStart, each of 20 participants'
 * callLegStart and callLegUpdate (connected, in the call), their callLegEnds, callEnd; then the next meeting.
 * Domains vary so the security policy has real work: secure, internal, other, guests.
 */
const DOMAINS = ['secure.example.com', 'example.com', 'partner.example.org'];

function body(session: string, index: number, bridge: string): string {
  const records: string[] = [];
  for (let i = 0; i < perPost; i++) records.push(meetingRecordXml(session, index * perPost + i, { domains: DOMAINS, guests: true }));
  return `<?xml version="1.0"?>\n<records session="${session}" callBridge="${bridge}">\n${records.join('\n')}\n</records>`;
}

const pool = new Pool(ingestUrl, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
const path = `/cdr/bench?token=${encodeURIComponent(token)}`;
// Each connection is one Call Bridge session sending its own meetings in order, as CMS does: its own
// recordIndex/correlatorIndex sequence, and a leg's start, update and end all on the same session.
const sessions = Array.from({ length: concurrency }, () => randomUUID());
const postsSent = sessions.map(() => 0);
const bridge = randomUUID();

async function drive(total: number, histogram: hdr.Histogram | null): Promise<{ ok: number; failed: number }> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  await Promise.all(
    sessions.map(async (session, lane) => {
      for (;;) {
        const n = next++;
        if (n >= total) return;
        const index = postsSent[lane] ?? 0;
        postsSent[lane] = index + 1;
        const started = performance.now();
        const res = await pool.request({
          method: 'POST',
          path,
          body: body(session, index, bridge),
          headers: { 'content-type': 'text/xml' },
        });
        await res.body.dump();
        const ms = performance.now() - started;
        if (res.statusCode === 200) {
          ok++;
          acked++;
          histogram?.recordValue(Math.round(ms * 1000));
        } else failed++;
      }
    }),
  );
  return { ok, failed };
}

const client = ackOnly ? null : new pg.Client({ connectionString: databaseUrl });
await client?.connect();
let acked = 0;
const countStored = async () =>
  client
    ? Number((await client.query('SELECT count(*) AS n FROM cdr_records WHERE session = ANY($1)', [sessions])).rows[0].n)
    : acked * perPost;

// Warm-up (JIT, connection set-up), not measured.
await drive(warmup, null);
while ((await countStored()) < warmup * perPost) await new Promise((r) => setTimeout(r, 100));

const databaseName = databaseUrl ? decodeURIComponent(new URL(databaseUrl).pathname.slice(1)) : '';
// Everything that shares the machine's cores during the run (our services only when this script started them).
const cpuGroups: ProcessGroup[] = [
  ...children.map((child) => ({ name: child.name, match: [child.process.pid ?? -1] })),
  { name: 'PostgreSQL', match: (comm: string) => comm === 'postgres' },
  // The server's processes above include other work's backends when the server is shared; these are only the
  // backends serving this run's database (its process title names it), i.e. the cost of our statements.
  ...(databaseName
    ? [
        {
          name: 'PostgreSQL backends of this run',
          match: (comm: string, cmdline: () => string) => comm === 'postgres' && cmdline().includes(` ${databaseName} `),
        },
      ]
    : []),
  { name: 'Redis', match: (comm: string) => comm.startsWith('redis-server') },
  { name: 'load generator', match: [process.pid] },
];
const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
const cpuBefore = readCpu(cpuGroups);
const started = performance.now();
const target = (warmup + posts) * perPost;
const { ok, failed } = await drive(posts, histogram);
const postSeconds = (performance.now() - started) / 1000;
// Counting stored records is only done once the POSTs are in: counting while they run would take Postgres
// CPU from the system under test (the count scans every stored record of the run).
let storedAt: number;
for (;;) {
  const stored = await countStored();
  storedAt = performance.now();
  if (stored >= target) break;
  await new Promise((r) => setTimeout(r, 20));
}
const storeSeconds = (storedAt - started) / 1000;
const cpuAfter = readCpu(cpuGroups);
const cpu = cpuBefore && cpuAfter ? cpuPerUnit(cpuBefore, cpuAfter, posts) : null;

const postsPerSecond = ok / postSeconds;
const recordsPerSecond = (posts * perPost) / storeSeconds;
const p50 = histogram.getValueAtPercentile(50) / 1000;
const p99 = histogram.getValueAtPercentile(99) / 1000;
const lagSeconds = storeSeconds - postSeconds;

const rows = [
  ['POSTs', String(posts)],
  ['records per POST', String(perPost)],
  ['record mix', `meetings of ${MEETING_PARTICIPANTS}: callStart, callLegStart + callLegUpdate each, callLegEnd each, callEnd`],
  ['concurrency (connections)', String(concurrency)],
  ['POSTs/s acknowledged (200)', postsPerSecond.toFixed(0)],
  ['non-200 answers', String(failed)],
  ['ack latency p50', `${p50.toFixed(2)} ms`],
  ['ack latency p99', `${p99.toFixed(2)} ms`],
  ...(ackOnly
    ? [['mode', 'ack only (no worker, nothing written to Postgres)']]
    : [
        ['records/s durably in Postgres', recordsPerSecond.toFixed(0)],
        ['Postgres behind ingest at the end', `${lagSeconds.toFixed(2)} s`],
      ]),
  ...(cpu ? [['CPU per POST (all processes of each, from /proc)', cpu.map(([name, us]) => `${name} ${us.toFixed(0)} µs`).join(', ')]] : []),
];
const table = ['| measure | value |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
console.log(table);

const file = new URL('./results/ingest.md', import.meta.url).pathname;
if (!existsSync(file)) {
  writeFileSync(
    file,
    '# Ingest benchmark results\n\n`npm run bench:ingest`: CMS-like CDR POSTs against cdr-ingest + policy-worker (real Redis and Postgres on the same machine as the load generator).\nGoal: >= 4,000 single-record POSTs/s acknowledged with p99 <= 25 ms, and the same rate sustained into Postgres.\n',
  );
}
const about = [
  `Machine: ${machineDescription()}; load average (1 / 5 / 15 min) at start ${loadAtStart}, at end ${loadAverage()}; ${niceness()}`,
  `Code: ${codeVersion()}`,
  `Command: \`${commandLine('bench:ingest')}\``,
  `Redis: ${redisUrl ? `${await redisSettings(redisUrl)}${privateRedis ? " (the benchmark's own redis-server, persisting as deployed)" : ''}` : 'not known (the services under test were started elsewhere; give --redis-url)'}`,
  `Postgres: ${databaseUrl ? await postgresSettings(databaseUrl) : 'not used (--ack-only)'}`,
];
appendFileSync(file, `\n### ${startedAt.toISOString()}\n\n${about.map((line) => `- ${line}`).join('\n')}\n\n${table}\n`);
console.log(`\nwritten to ${file}`);

await pool.close();
await client?.end();
for (const child of children.reverse()) await child.stop();
await dropDatabase?.();
await privateRedis?.stop();
