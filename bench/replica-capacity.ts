/**
 * node bench/replica-capacity.ts [--replicas 1,2] [--posts 40000] [--records 100000] [--concurrency 32] [--note TEXT]
 *   [--results FILE]
 *
 * Each stage on its own, one replica against two, so that a stage's scaling is not hidden by the others taking the
 * same cores (bench/replicas.ts runs the whole chain at once, where one replica of each already keeps both cores of
 * the benchmark machine busy):
 * 1. cdr-ingest alone: `--posts` single-record CDR POSTs over `--concurrency` keep-alive connections spread evenly over
 *    the replicas, no policy worker running (the batches wait in Redis): POSTs/s acknowledged.
 * 2. policy-worker alone: the replicas, warmed up, are paused while one cdr-ingest queues `--records` single-record
 *    batches, then resumed together to drain them into Postgres: records/s stored, and how many of the run's Postgres backends waited for a
 *    lock (two workers storing records of the same meeting queue on its lock).
 * For both: the CPU each process used (/proc) per unit of work and the whole machine's busy cores (/proc/stat), so a
 * ceiling set by the cores shows as such. Fresh database and private Redis (AOF everysec) per run. Figures are appended
 * to bench/results/replicas.md. A benchmark, not a test: it asserts nothing.
 *
 * `runReplicaCapacity(options)` runs the same from another script (bench:scale) and returns the figures.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pg } from '@cms/db';
import { createCdrBatchesQueue, createRedisConnection } from '@cms/queue';
import { Pool } from 'undici';
import { type CpuFigure, cpuFigures, databaseBackends, type ProcessGroup } from './lib/cpu-usage.ts';
import { machineDescription } from './lib/machine.ts';
import { meetingRecordXml } from './lib/meeting-records.ts';
import { startPrivateRedis } from './lib/private-redis.ts';
import { benchServiceEnv, type Child, freePort, freshDatabase, startService } from './lib/processes.ts';
import { codeVersion, commandLine, loadAverage, niceness } from './lib/run-metadata.ts';

export interface ReplicaCapacityOptions {
  replicas?: number[];
  posts?: number;
  records?: number;
  concurrency?: number;
  databaseUrl?: string;
  /** Where the results block is appended; default bench/results/replicas.md; null: not written. */
  resultsFile?: string | null;
  note?: string;
  log?: (line: string) => void;
}

/** One stage at one replica count. */
export interface StageRun {
  stage: 'cdr-ingest' | 'policy-worker';
  replicas: number;
  /** POSTs/s acknowledged (ingest) or records/s stored (worker). */
  perSecond: number;
  /** CPU of each process group, per POST or per record. */
  cpu: CpuFigure[];
  machineBusyCores: number;
  /** Mean backends of the run's database waiting for a lock (worker stage). */
  waitingForLock: number | null;
}

const INGEST_TOKEN = 'bench-ingest-token-0123456789';
const DOMAINS = ['secure.example', 'corp.example', 'partner.example.org'];
const WARMUP_POSTS = 4000;

async function runStage(
  stage: StageRun['stage'],
  replicas: number,
  o: Required<Omit<ReplicaCapacityOptions, 'replicas' | 'resultsFile' | 'note'>>,
) {
  const children: Child[] = [];
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-capacity-'));
  const database = await freshDatabase(o.databaseUrl, 'cms_bench_capacity');
  const redis = await startPrivateRedis();
  try {
    const configFile = path.join(dir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({ cms: { nodes: [] }, policy: { secureDomains: [DOMAINS[0]], internalDomains: [DOMAINS[1]] } }),
    );
    const env = benchServiceEnv({
      CONFIG_FILE: configFile,
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      QUEUE_PREFIX: `{bench_capacity_${Date.now().toString(36)}}`,
      INGEST_TOKEN,
    });
    const start = async (service: 'cdr-ingest' | 'policy-worker') => {
      const port = await freePort();
      const extra: Record<string, string> =
        service === 'cdr-ingest'
          ? { INGEST_PORT: String(port), INGEST_METRICS_PORT: String(await freePort()) }
          : { POLICY_WORKER_PORT: String(port) };
      const child = await startService(service, { ...env, ...extra }, `http://127.0.0.1:${port}/readyz`);
      children.push(child);
      return { child, url: `http://127.0.0.1:${port}` };
    };
    const ingests = await Promise.all(Array.from({ length: stage === 'cdr-ingest' ? replicas : 1 }, () => start('cdr-ingest')));
    const pools = ingests.map((s) => new Pool(s.url, { connections: Math.ceil(o.concurrency / ingests.length), pipelining: 1 }));
    const sessions = Array.from({ length: o.concurrency }, () => randomUUID());
    const sent = sessions.map(() => 0);
    // Each connection posts its own meeting's records in order, one POST at a time (as bench/replicas.ts).
    const drive = async (total: number) => {
      let next = 0;
      await Promise.all(
        sessions.map(async (session, lane) => {
          const pool = pools[lane % pools.length] as Pool;
          while (next++ < total) {
            const index = sent[lane] ?? 0;
            sent[lane] = index + 1;
            const body = `<?xml version="1.0"?>\n<records session="${session}">\n${meetingRecordXml(session, index, { domains: DOMAINS })}\n</records>`;
            const res = await pool.request({
              method: 'POST',
              path: `/cdr/bench?token=${INGEST_TOKEN}`,
              body,
              headers: { 'content-type': 'text/xml' },
            });
            await res.body.dump();
            if (res.statusCode !== 200) throw new Error(`cdr-ingest answered ${res.statusCode}`);
          }
        }),
      );
    };
    const groups = (processes: { name: string; child: Child }[], extra: ProcessGroup[]): ProcessGroup[] => [
      ...processes.map((p) => ({ name: p.name, match: [p.child.process.pid ?? -1] })),
      ...extra,
      { name: 'Redis', match: [redis.pid] },
    ];
    const databaseName = decodeURIComponent(new URL(database.url).pathname.slice(1));
    const backends = databaseBackends(databaseName);
    // Rate, the machine's busy cores and each group's CPU while `work` does `units` POSTs or records.
    const measure = async (measured: ProcessGroup[], units: number, work: () => Promise<void>) => {
      const { figures, wallSeconds, busyCores } = await cpuFigures(measured, async () => {
        await work();
        return units;
      });
      return { perSecond: units / wallSeconds, machineBusyCores: busyCores, cpu: figures };
    };

    if (stage === 'cdr-ingest') {
      await drive(WARMUP_POSTS);
      const measured = groups(
        ingests.map((s, i) => ({ name: `cdr-ingest #${i + 1}`, child: s.child })),
        [{ name: 'load generator', match: [process.pid] }],
      );
      const figures = await measure(measured, o.posts, () => drive(o.posts));
      return { stage, replicas, ...figures, waitingForLock: null } satisfies StageRun;
    }

    // policy-worker: warmed up on the first POSTs, then paused (BullMQ's global pause: no worker takes a job) while
    // the measured batches are queued, and resumed: the workers drain a full queue from a warm start together.
    const workers = await Promise.all(Array.from({ length: replicas }, () => start('policy-worker')));
    const client = new pg.Client({ connectionString: database.url });
    client.on('error', () => undefined);
    await client.connect();
    const connection = createRedisConnection(redis.url, 'producer');
    const queue = createCdrBatchesQueue({ connection, prefix: env.QUEUE_PREFIX });
    try {
      const stored = async () => Number((await client.query('SELECT count(*) AS n FROM cdr_records')).rows[0].n);
      await drive(WARMUP_POSTS);
      while ((await stored()) < WARMUP_POSTS) await new Promise((r) => setTimeout(r, 50));
      await queue.pause();
      await drive(o.records);
      let lockSamples = 0;
      let waiting = 0;
      const measured = groups(
        workers.map((s, i) => ({ name: `policy-worker #${i + 1}`, child: s.child })),
        [backends],
      );
      const figures = await measure(measured, o.records, async () => {
        await queue.resume();
        while ((await stored()) < WARMUP_POSTS + o.records) {
          const { rows } = await client.query(
            `SELECT count(*) FILTER (WHERE wait_event_type = 'Lock')::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
            [databaseName],
          );
          waiting += rows[0].n;
          lockSamples++;
          await new Promise((r) => setTimeout(r, 50));
        }
      });
      return { stage, replicas, ...figures, waitingForLock: lockSamples ? waiting / lockSamples : 0 } satisfies StageRun;
    } finally {
      await queue.close();
      connection.disconnect();
      await client.end();
    }
  } finally {
    for (const child of children.reverse()) await child.stop();
    await redis.stop();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runReplicaCapacity(options: ReplicaCapacityOptions = {}): Promise<{ runs: StageRun[]; markdown: string }> {
  const o = {
    posts: options.posts ?? 40_000,
    records: options.records ?? 100_000,
    concurrency: options.concurrency ?? 32,
    databaseUrl: options.databaseUrl ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    log: options.log ?? ((line: string) => console.log(line)),
  };
  const counts = options.replicas ?? [1, 2];
  const loadAtStart = loadAverage();
  const startedAt = new Date();
  const runs: StageRun[] = [];
  for (const stage of ['cdr-ingest', 'policy-worker'] as const) {
    for (const n of counts) {
      const run = await runStage(stage, n, o);
      o.log(`${stage} alone, ${n} replica(s): ${run.perSecond.toFixed(0)}/s, machine ${run.machineBusyCores.toFixed(2)} cores busy`);
      runs.push(run);
    }
  }
  const cores = os.cpus().length;
  const ratio = (stage: StageRun['stage']) => {
    const one = runs.find((r) => r.stage === stage && r.replicas === 1);
    const two = runs.find((r) => r.stage === stage && r.replicas === 2);
    return one && two ? `×${(two.perSecond / one.perSecond).toFixed(2)}` : 'n/a';
  };
  const us = (v: number) => `${Math.round(v).toLocaleString('en')} µs`;
  const markdown = [
    `### ${startedAt.toISOString()}: each stage alone (bench/replica-capacity.ts)`,
    '',
    `- Machine: ${machineDescription()}; load average (1 / 5 / 15 min) at start ${loadAtStart}, at end ${loadAverage()}; ${niceness()}`,
    `- Code: ${codeVersion()}`,
    `- Command: \`${commandLine('bench/replica-capacity.ts')}\``,
    `- Load: cdr-ingest ${o.posts} single-record POSTs (after ${WARMUP_POSTS}) over ${o.concurrency} connections spread over the replicas, no worker running; policy-worker: ${o.records} single-record batches queued while the warmed-up workers were paused, then drained; fresh database and private Redis (AOF everysec) per run`,
    `- Two replicas over one: cdr-ingest ${ratio('cdr-ingest')}, policy-worker ${ratio('policy-worker')}`,
    ...(options.note ? [`- Note: ${options.note}`] : []),
    '',
    '| stage | replicas | rate | machine busy (cores) | Postgres backends waiting for a lock | CPU per unit (cores busy) |',
    '|---|---|---|---|---|---|',
    ...runs.map(
      (r) =>
        `| ${r.stage} alone | ${r.replicas} | ${r.perSecond.toFixed(0)} ${r.stage === 'cdr-ingest' ? 'POSTs/s' : 'records/s'} | ${r.machineBusyCores.toFixed(2)} of ${cores} | ${r.waitingForLock === null ? 'n/a' : r.waitingForLock.toFixed(2)} | ${r.cpu.map((c) => `${c.name} ${us(c.perUnitUs)} (${c.cores.toFixed(2)})`).join(', ')} |`,
    ),
    '',
  ].join('\n');
  const resultsFile = options.resultsFile === undefined ? path.join(import.meta.dirname, 'results', 'replicas.md') : options.resultsFile;
  if (resultsFile) appendFileSync(resultsFile, `\n${markdown}`);
  return { runs, markdown };
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    options: {
      replicas: { type: 'string', default: '1,2' },
      posts: { type: 'string', default: '40000' },
      records: { type: 'string', default: '100000' },
      concurrency: { type: 'string', default: '32' },
      note: { type: 'string' },
      results: { type: 'string' },
    },
  });
  const { markdown } = await runReplicaCapacity({
    replicas: args.replicas.split(',').map(Number),
    posts: Number(args.posts),
    records: Number(args.records),
    concurrency: Number(args.concurrency),
    ...(args.note ? { note: args.note } : {}),
    ...(args.results ? { resultsFile: args.results } : {}),
  });
  console.log(markdown);
  process.exit(0);
}
