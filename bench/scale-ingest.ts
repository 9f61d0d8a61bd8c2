/**
 * Ingest and storage rate on a large database against an empty one (part of npm run bench:scale; also
 * `node bench/scale-ingest.ts --database-url <url of the large database>`).
 *
 * The real cdr-ingest and policy-worker processes on each database in turn (empty, large, empty, large: the
 * machine is shared, so the runs alternate), the same load each time: CMS-like single-record POSTs from 32
 * Call Bridge sessions, meetings of 20 participants (as bench/ingest.ts sends them). Measured: POSTs/s acknowledged
 * and records/s durably in Postgres, with the CPU per POST of each process group (bench/lib's /proc reader).
 */
import { randomUUID } from 'node:crypto';
import { pg } from '@cms/db';
import { Pool } from 'undici';
import { cpuPerUnit, type ProcessGroup, readCpu } from './lib/cpu-usage.ts';
import { meetingRecordXml } from './lib/meeting-records.ts';
import { type Child, freePort, freshDatabase, startService } from './lib/processes.ts';

const DOMAINS = ['secure.example.com', 'example.com', 'partner.example.org'];
const TOKEN = 'bench-scale-ingest-token-0123456789';

export interface IngestRun {
  database: string;
  postsPerSecond: number;
  recordsPerSecond: number;
  cpuPerPost: [string, number][] | null;
}

/** One measured run against `databaseUrl`: services started on it, `posts` POSTs after a warm-up, services stopped. */
export async function measureIngest(databaseUrl: string, redisUrl: string, posts: number, concurrency = 32): Promise<IngestRun> {
  const [ingestPort, ingestMetricsPort, workerPort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: `bench_scale_${Date.now().toString(36)}`,
    INGEST_TOKEN: TOKEN,
    INGEST_PORT: String(ingestPort),
    INGEST_METRICS_PORT: String(ingestMetricsPort),
    POLICY_WORKER_PORT: String(workerPort),
    INGEST_HOST: '127.0.0.1',
    POLICY_WORKER_HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  };
  const children: Child[] = [];
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const pool = new Pool(`http://127.0.0.1:${ingestPort}`, { connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  try {
    children.push(await startService('cdr-ingest', env, `http://127.0.0.1:${ingestPort}/readyz`));
    children.push(await startService('policy-worker', env, `http://127.0.0.1:${workerPort}/readyz`));
    const sessions = Array.from({ length: concurrency }, () => randomUUID());
    const sent = sessions.map(() => 0);
    const bridge = randomUUID();
    let acked = 0;
    const drive = async (total: number) => {
      let next = 0;
      await Promise.all(
        sessions.map(async (session, lane) => {
          while (next++ < total) {
            const index = sent[lane] ?? 0;
            sent[lane] = index + 1;
            const res = await pool.request({
              method: 'POST',
              path: `/cdr/bench?token=${TOKEN}`,
              body: `<?xml version="1.0"?>\n<records session="${session}" callBridge="${bridge}">\n${meetingRecordXml(session, index, { domains: DOMAINS })}\n</records>`,
              headers: { 'content-type': 'text/xml' },
            });
            await res.body.dump();
            if (res.statusCode === 200) acked++;
          }
        }),
      );
    };
    // The records carry the time they were sent (meetingRecordXml), so the count reads this month's partition (or two),
    // not every partition's session index: on the large database that poll was counted as the ingest's cost.
    const since = new Date(Date.now() - 60_000).toISOString();
    const stored = async () =>
      Number(
        (await client.query('SELECT count(*) AS n FROM cdr_records WHERE session = ANY($1) AND time >= $2', [sessions, since])).rows[0].n,
      );
    const warmup = 2000;
    await drive(warmup);
    while ((await stored()) < acked) await new Promise((r) => setTimeout(r, 100));
    const database = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
    const groups: ProcessGroup[] = [
      ...children.map((c) => ({ name: c.name, match: [c.process.pid ?? -1] })),
      {
        name: 'PostgreSQL backends of this database',
        match: (comm: string, cmdline: () => string) => comm === 'postgres' && cmdline().includes(` ${database} `),
      },
    ];
    const cpuBefore = readCpu(groups);
    const started = performance.now();
    const ackedBefore = acked;
    await drive(posts);
    const postSeconds = (performance.now() - started) / 1000;
    const target = acked;
    while ((await stored()) < target) await new Promise((r) => setTimeout(r, 20));
    const storeSeconds = (performance.now() - started) / 1000;
    const cpuAfter = readCpu(groups);
    return {
      database,
      postsPerSecond: (acked - ackedBefore) / postSeconds,
      recordsPerSecond: (target - ackedBefore) / storeSeconds,
      cpuPerPost: cpuBefore && cpuAfter ? cpuPerUnit(cpuBefore, cpuAfter, posts) : null,
    };
  } finally {
    await pool.close();
    await client.end();
    for (const child of children.reverse()) await child.stop();
  }
}

/** Alternating runs on a fresh empty database and on `largeUrl`; returns every run. */
export async function compareIngest(
  largeUrl: string,
  redisUrl: string,
  posts: number,
  rounds = 2,
): Promise<{ empty: IngestRun[]; large: IngestRun[] }> {
  const base = new URL(largeUrl);
  base.pathname = '/postgres';
  const empty = await freshDatabase(base.toString(), 'cms_scale_empty');
  const result = { empty: [] as IngestRun[], large: [] as IngestRun[] };
  try {
    for (let round = 0; round < rounds; round++) {
      result.empty.push(await measureIngest(empty.url, redisUrl, posts));
      result.large.push(await measureIngest(largeUrl, redisUrl, posts));
    }
  } finally {
    await empty.drop();
  }
  return result;
}
