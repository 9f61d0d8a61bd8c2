/**
 * node bench/replicas.ts [--replicas 1,2] [--posts 20000] [--concurrency 32] [--warmup 2000] [--calls 30]
 *   [--max-writes-per-second 10] [--note TEXT]
 *
 * One replica of each service against two: for each count N it starts, on a fresh database and a Redis of its own
 * (AOF everysec, as compose runs it), N cdr-ingest and N policy-worker processes and then N cms-actuator ones,
 * with the CMS simulator (two bridges, in this process) as CMS.
 * 1. Ingest: `--posts` single-record CDR POSTs (meetings of 20 joining and leaving) over `--concurrency` keep-alive
 *    connections spread evenly over the N ingest replicas (what a load balancer in front of them does), then waits
 *    until Postgres holds them all: POSTs/s acknowledged, ack p50/p99, records/s into Postgres.
 * 2. Writes: `--calls` calls per bridge started at once, each needing its message written: writes/s per bridge,
 *    the busiest second the simulator saw and its refusals (writes over the ceiling), writes per replica.
 * For both it reads the CPU each process used from /proc/<pid>/stat (each replica, this run's PostgreSQL backends,
 * the Redis, this load generator) and the whole machine's busy time from /proc/stat, so a ceiling set by the cores
 * shows as such. Figures go to bench/results/replicas.md. A benchmark, not a test: it asserts nothing.
 *
 * `runReplicas(options)` runs the same from another script (bench:scale) and returns the figures.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { pg } from '@cms/db';
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';
import { type CpuFigure, cpuFigures, databaseBackends, type ProcessGroup } from './lib/cpu-usage.ts';
import { machineDescription } from './lib/machine.ts';
import { meetingRecordXml } from './lib/meeting-records.ts';
import { startPrivateRedis } from './lib/private-redis.ts';
import { benchCmsNodes, benchServiceEnv, type Child, freePort, freshDatabase, startService } from './lib/processes.ts';
import { codeVersion, commandLine, loadAverage, niceness, postgresSettings, redisSettings } from './lib/run-metadata.ts';

export interface ReplicasOptions {
  /** Replica counts to measure, each a run of its own; default [1, 2]. */
  replicas?: number[];
  /** Measured POSTs per run; default 20000. */
  posts?: number;
  /** Keep-alive connections of the load generator, spread over the ingest replicas; default 32. */
  concurrency?: number;
  /** POSTs before measuring (JIT, connections); default 2000. */
  warmup?: number;
  /** Calls per bridge needing a message write in the write phase; 0 leaves the phase out. Default 30. */
  calls?: number;
  /** Both bridges' ceiling (ours and the simulator's); default 10. */
  maxWritesPerSecond?: number;
  /** Postgres to make the run's databases on; default DATABASE_URL, else the local server. */
  databaseUrl?: string;
  /** Where the results block is appended; default bench/results/replicas.md; null: not written. */
  resultsFile?: string | null;
  note?: string;
  log?: (line: string) => void;
}

export interface ReplicasRun {
  replicas: number;
  postsPerSecond: number;
  recordsPerSecond: number;
  ackP50Ms: number;
  ackP99Ms: number;
  /** POSTs not answered 200. */
  refused: number;
  /** Records per Postgres transaction of the workers (their group commits), all workers together. */
  recordsPerGroupCommit: number;
  /** Backends of this run's database sampled every 200 ms: running a statement, and of those waiting for a lock (means). */
  backends: { active: number; waitingForLock: number };
  /** The whole machine's busy cores during the ingest phase (from /proc/stat), out of `cores`. */
  machineBusyCores: number;
  ingestCpu: CpuFigure[];
  writes: null | {
    /** Message writes CMS accepted, both bridges. */
    applied: number;
    seconds: number;
    /** Per bridge. */
    writesPerSecond: number;
    /** Most accepted writes one bridge saw within any 1000 ms. */
    busiestSecond: number;
    /** Writes over the ceiling (the simulator refused them with 503). */
    violations: number;
    /** Applied writes per actuator replica (its cms_writes_total). */
    appliedByReplica: number[];
    cpu: CpuFigure[];
  };
}

export interface ReplicasResult {
  runs: ReplicasRun[];
  /** Two replicas' rate over one's, when both were measured. */
  speedup: { posts: number; records: number } | null;
  cores: number;
  markdown: string;
}

const SECURE = 'secure.example';
const INTERNAL = 'corp.example';
const INGEST_TOKEN = 'bench-ingest-token-0123456789';
const DOMAINS = [SECURE, INTERNAL, 'partner.example.org'];

async function metricSum(url: string, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(url)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

async function runOnce(replicas: number, o: Required<Omit<ReplicasOptions, 'replicas' | 'resultsFile' | 'note'>>): Promise<ReplicasRun> {
  const log = o.log;
  const children: Child[] = [];
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-replicas-'));
  const database = await freshDatabase(o.databaseUrl, 'cms_bench_replicas');
  const redis = await startPrivateRedis();
  let sim: Simulator | undefined;
  let stopped: Promise<void> | undefined;
  const stopAll = () => {
    stopped ??= (async () => {
      for (const child of children.reverse()) await child.stop();
      await sim?.stop();
      await redis.stop();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  // Ctrl-C or a kill stops what the run started: the services would otherwise outlive the benchmark.
  const onSignal = () => {
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    sim = await startSimulator({
      bridges: ['cms-1', 'cms-2'].map((name, i) => ({ name, username: 'bench-api', password: `bench-secret-${i + 1}` })),
      seed: 20261207,
      faults: { maxWritesPerSecond: o.maxWritesPerSecond },
      cdr: { flushDelayMs: 5 },
      controlPort: null,
    });
    const configFile = path.join(dir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        cms: {
          nodes: benchCmsNodes(sim.bridges, o.maxWritesPerSecond),
        },
        policy: { secureDomains: [SECURE], internalDomains: [INTERNAL] },
      }),
    );
    const env = benchServiceEnv({
      CONFIG_FILE: configFile,
      DATABASE_URL: database.url,
      REDIS_URL: redis.url,
      // Hash-tagged, as on a Redis Cluster (docs/scaling.md); one Redis here.
      QUEUE_PREFIX: `{bench_replicas_${Date.now().toString(36)}}`,
      INGEST_TOKEN,
    });
    const start = async (service: 'cdr-ingest' | 'policy-worker' | 'cms-actuator', index: number) => {
      const port = await freePort();
      const extra: Record<string, string> =
        service === 'cdr-ingest'
          ? { INGEST_PORT: String(port), INGEST_METRICS_PORT: String(await freePort()) }
          : service === 'policy-worker'
            ? { POLICY_WORKER_PORT: String(port) }
            : { ACTUATOR_PORT: String(port) };
      const child = await startService(service, { ...env, ...extra }, `http://127.0.0.1:${port}/readyz`);
      children.push(child);
      return { child, name: `${service} #${index}`, url: `http://127.0.0.1:${port}` };
    };
    const started = await Promise.all(
      Array.from({ length: replicas }, (_, i) => [start('cdr-ingest', i + 1), start('policy-worker', i + 1)]).flat(),
    );
    const ingests = started.filter((s) => s.name.startsWith('cdr-ingest'));
    log(`${replicas} replica(s): ${started.map((s) => s.name).join(', ')} ready`);
    // The simulator's CDRs (write phase) go to the first ingest replica, as a bridge sends to one receiver URI.
    sim.setCdrReceivers([`${ingests[0]?.url}/cdr/{bridge}?token=${INGEST_TOKEN}`]);

    const databaseName = decodeURIComponent(new URL(database.url).pathname.slice(1));
    const commonGroups: ProcessGroup[] = [
      databaseBackends(databaseName),
      { name: 'Redis', match: [redis.pid] },
      { name: 'load generator and simulator', match: [process.pid] },
    ];

    // ---- ingest -----------------------------------------------------------------------------------------------
    const sessions = Array.from({ length: o.concurrency }, () => randomUUID());
    const sent = sessions.map(() => 0);
    const pools = ingests.map(
      (s) => new Pool(s.url, { connections: Math.ceil(o.concurrency / replicas), pipelining: 1, keepAliveTimeout: 60_000 }),
    );
    const urlPath = `/cdr/bench?token=${INGEST_TOKEN}`;
    let refused = 0;
    const drive = async (total: number, histogram: hdr.Histogram | null) => {
      let next = 0;
      await Promise.all(
        sessions.map(async (session, lane) => {
          const pool = pools[lane % pools.length] as Pool;
          for (;;) {
            if (next++ >= total) return;
            const index = sent[lane] ?? 0;
            sent[lane] = index + 1;
            const body = `<?xml version="1.0"?>\n<records session="${session}">\n${meetingRecordXml(session, index, { domains: DOMAINS })}\n</records>`;
            const t0 = performance.now();
            const res = await pool.request({ method: 'POST', path: urlPath, body, headers: { 'content-type': 'text/xml' } });
            await res.body.dump();
            if (res.statusCode === 200) histogram?.recordValue(Math.round((performance.now() - t0) * 1000));
            else if (histogram) refused++;
          }
        }),
      );
    };
    const client = new pg.Client({ connectionString: database.url });
    // Stopped mid-run (Ctrl-C), the database is dropped under it: that ends the connection, not the clean-up.
    client.on('error', () => undefined);
    await client.connect();
    const countStored = async () =>
      Number((await client.query('SELECT count(*) AS n FROM cdr_records WHERE session = ANY($1)', [sessions])).rows[0].n);
    await drive(o.warmup, null);
    while ((await countStored()) < o.warmup) await new Promise((r) => setTimeout(r, 100));

    const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    const ingestGroups: ProcessGroup[] = [...started.map((s) => ({ name: s.name, match: [s.child.process.pid ?? -1] })), ...commonGroups];
    const workers = started.filter((s) => s.name.startsWith('policy-worker'));
    const groupCommits = async () =>
      (await Promise.all(workers.map((w) => metricSum(`${w.url}/metrics`, 'cdr_group_commit_seconds_count', {})))).reduce(
        (a, b) => a + b,
        0,
      );
    const commitsBefore = await groupCommits();
    // Where the workers' transactions wait: a meeting's records stored by two workers at once queue on its lock.
    const sampler = new pg.Client({ connectionString: database.url });
    sampler.on('error', () => undefined);
    await sampler.connect();
    const samples: { active: number; waiting: number }[] = [];
    const sampling = setInterval(() => {
      sampler
        .query(
          `SELECT count(*) FILTER (WHERE state = 'active')::int AS active, count(*) FILTER (WHERE wait_event_type = 'Lock')::int AS waiting
             FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [databaseName],
        )
        .then(({ rows }) => samples.push(rows[0]))
        .catch(() => undefined);
    }, 200);
    let postSeconds = 0;
    const t0 = performance.now();
    const ingest = await cpuFigures(ingestGroups, async () => {
      await drive(o.posts, histogram);
      postSeconds = (performance.now() - t0) / 1000;
      // Counted only once the POSTs are in: counting while they run would take Postgres CPU from the system.
      while ((await countStored()) < o.warmup + o.posts) await new Promise((r) => setTimeout(r, 20));
      return o.posts;
    });
    clearInterval(sampling);
    await sampler.end();
    const commits = (await groupCommits()) - commitsBefore;
    const mean = (key: 'active' | 'waiting') => samples.reduce((a, x) => a + x[key], 0) / Math.max(1, samples.length);
    await Promise.all(pools.map((p) => p.close()));
    await client.end();
    const run: ReplicasRun = {
      replicas,
      postsPerSecond: (o.posts - refused) / postSeconds,
      recordsPerSecond: o.posts / ingest.wallSeconds,
      ackP50Ms: histogram.getValueAtPercentile(50) / 1000,
      ackP99Ms: histogram.getValueAtPercentile(99) / 1000,
      refused,
      recordsPerGroupCommit: o.posts / commits,
      backends: { active: mean('active'), waitingForLock: mean('waiting') },
      machineBusyCores: ingest.busyCores,
      ingestCpu: ingest.figures,
      writes: null,
    };
    log(`${replicas} replica(s): ${run.postsPerSecond.toFixed(0)} POSTs/s, ${run.recordsPerSecond.toFixed(0)} records/s`);

    // ---- writes -----------------------------------------------------------------------------------------------
    if (o.calls > 0) {
      const actuators = await Promise.all(Array.from({ length: replicas }, (_, i) => start('cms-actuator', i + 1)));
      const writeGroups: ProcessGroup[] = [
        ...[...started, ...actuators].map((s) => ({ name: s.name, match: [s.child.process.pid ?? -1] })),
        ...commonGroups,
      ];
      const simulator = sim;
      const seqBefore = simulator.writeLog().at(-1)?.seq ?? 0;
      const calls: { callId: string; text: string }[] = [];
      const writes = await cpuFigures(writeGroups, async () => {
        for (let m = 0; m < o.calls * 2; m++) {
          const bridge = m % 2 ? 'cms-2' : 'cms-1';
          const level = (m % 3) + 1;
          const meeting = simulator.startCall({ name: `Bench ${m}`, bridges: [] });
          const joined = simulator.join({ meeting, bridge, remoteParty: `p${m}@${DOMAINS[level - 1]}` });
          calls.push({ callId: joined.callId, text: `Security Level ${level}` });
        }
        for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
          if (calls.every(({ callId, text }) => simulator.inspectCall(callId).messageText === text)) break;
          await new Promise((r) => setTimeout(r, 20));
        }
        return calls.length;
      });
      const log2 = simulator.writeLog({ sinceSeq: seqBefore });
      const applied = log2.filter((w) => w.outcome === 'applied' && w.params.messageText !== undefined).length;
      const busiest = Math.max(
        ...['cms-1', 'cms-2'].map((bridge) => {
          const times = log2.filter((w) => w.bridge === bridge && w.outcome !== 'rateLimited').map((w) => w.atMs);
          let most = 0;
          for (let i = 0, j = 0; i < times.length; i++) {
            while ((times[i] as number) - (times[j] as number) >= 1000) j++;
            most = Math.max(most, i - j + 1);
          }
          return most;
        }),
      );
      run.writes = {
        applied,
        seconds: writes.wallSeconds,
        writesPerSecond: applied / 2 / writes.wallSeconds,
        busiestSecond: busiest,
        violations: log2.filter((w) => w.outcome === 'rateLimited').length,
        appliedByReplica: await Promise.all(
          actuators.map((a) => metricSum(`${a.url}/metrics`, 'cms_writes_total', { outcome: 'applied' })),
        ),
        cpu: writes.figures,
      };
      log(`${replicas} replica(s): ${applied} writes in ${writes.wallSeconds.toFixed(1)} s, busiest second ${busiest}`);
    }
    return run;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stopAll();
  }
}

const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';

function cpuTable(figures: CpuFigure[], unit: string): string {
  const sum = (key: 'seconds' | 'cores' | 'perUnitUs') => figures.reduce((total, f) => total + f[key], 0);
  return [
    `| process | CPU s | cores busy | CPU per ${unit} |`,
    '|---|---|---|---|',
    ...figures.map((f) => `| ${f.name} | ${fmt(f.seconds, 2)} | ${fmt(f.cores, 2)} | ${fmt(f.perUnitUs)} µs |`),
    `| all of the above | ${fmt(sum('seconds'), 2)} | ${fmt(sum('cores'), 2)} | ${fmt(sum('perUnitUs'))} µs |`,
  ].join('\n');
}

export async function runReplicas(options: ReplicasOptions = {}): Promise<ReplicasResult> {
  const o = {
    posts: options.posts ?? 20_000,
    concurrency: options.concurrency ?? 32,
    warmup: options.warmup ?? 2000,
    calls: options.calls ?? 30,
    maxWritesPerSecond: options.maxWritesPerSecond ?? 10,
    databaseUrl: options.databaseUrl ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    log: options.log ?? ((line: string) => process.stderr.write(`${line}\n`)),
  };
  const startedAt = new Date();
  const version = codeVersion();
  const loadAtStart = loadAverage();
  const cores = os.cpus().length;
  const runs: ReplicasRun[] = [];
  for (const n of options.replicas ?? [1, 2]) runs.push(await runOnce(n, o));
  const one = runs.find((r) => r.replicas === 1);
  const two = runs.find((r) => r.replicas === 2);
  const speedup =
    one && two ? { posts: two.postsPerSecond / one.postsPerSecond, records: two.recordsPerSecond / one.recordsPerSecond } : null;

  const summary = [
    '| replicas of each | POSTs/s acked | ack p50 / p99 | records/s into Postgres | non-200 | records per group commit | Postgres backends active / waiting for a lock | machine busy (cores) | writes/s per bridge | busiest second | over the ceiling | writes per actuator |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...runs.map(
      (r) =>
        `| ${r.replicas} | ${fmt(r.postsPerSecond)} | ${fmt(r.ackP50Ms, 1)} / ${fmt(r.ackP99Ms, 1)} ms | ${fmt(r.recordsPerSecond)} | ${r.refused} | ${fmt(r.recordsPerGroupCommit, 1)} | ${fmt(r.backends.active, 2)} / ${fmt(r.backends.waitingForLock, 2)} | ${fmt(r.machineBusyCores, 2)} of ${cores} | ${r.writes ? fmt(r.writes.writesPerSecond, 1) : '-'} | ${r.writes?.busiestSecond ?? '-'} | ${r.writes?.violations ?? '-'} | ${r.writes?.appliedByReplica.join(' / ') ?? '-'} |`,
    ),
  ].join('\n');
  const details = runs
    .map(
      (r) =>
        `#### ${r.replicas} replica(s) of each: CPU during the ingest phase\n\n${cpuTable(r.ingestCpu, 'POST')}${
          r.writes
            ? `\n\n#### ${r.replicas} replica(s) of each: CPU during the write phase (${r.writes.applied} writes)\n\n${cpuTable(r.writes.cpu, 'write')}`
            : ''
        }`,
    )
    .join('\n\n');
  const redisNote = await (async () => {
    const redis = await startPrivateRedis();
    try {
      return await redisSettings(redis.url);
    } finally {
      await redis.stop();
    }
  })();
  const about = [
    `Machine: ${machineDescription()}, shared with other work (other sessions' tests and benchmarks); load average (1 / 5 / 15 min) at start ${loadAtStart}, at end ${loadAverage()}; ${niceness()}`,
    `Code: ${version}`,
    `Command: \`${commandLine('bench:replicas')}\``,
    `Load: ${o.posts} single-record POSTs (after ${o.warmup} warm-up) over ${o.concurrency} connections spread over the ingest replicas; ${o.calls} calls per bridge needing a message, ceiling ${o.maxWritesPerSecond}/s per bridge`,
    `Redis: each run its own, ${redisNote} (the benchmark's own redis-server)`,
    `Postgres: ${await postgresSettings(o.databaseUrl)} (the machine's server; a fresh database per run)`,
    ...(speedup ? [`Two replicas over one: POSTs/s × ${fmt(speedup.posts, 2)}, records/s × ${fmt(speedup.records, 2)}`] : []),
    ...(options.note ? [`Note: ${options.note}`] : []),
  ];
  const markdown = `### ${startedAt.toISOString()}\n\n${about.map((line) => `- ${line}`).join('\n')}\n\n${summary}\n\n${details}\n`;
  const file = options.resultsFile === undefined ? new URL('./results/replicas.md', import.meta.url).pathname : options.resultsFile;
  if (file) {
    if (!existsSync(file)) {
      writeFileSync(
        file,
        '# Replicas benchmark results\n\n`node bench/replicas.ts`: one replica of cdr-ingest, policy-worker and cms-actuator against two, on one Redis and one Postgres, with the CMS simulator as CMS. What each replica count acknowledges and stores, the writes each bridge gets (never over its ceiling, however many actuators), and the CPU each process used, which says where the ceiling of one machine is.\n',
      );
    }
    appendFileSync(file, `\n${markdown}`);
  }
  return { runs, speedup, cores, markdown };
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    options: {
      replicas: { type: 'string', default: '1,2' },
      posts: { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: '32' },
      warmup: { type: 'string', default: '2000' },
      calls: { type: 'string', default: '30' },
      'max-writes-per-second': { type: 'string', default: '10' },
      note: { type: 'string' },
    },
  });
  const result = await runReplicas({
    replicas: args.replicas.split(',').map(Number),
    posts: Number(args.posts),
    concurrency: Number(args.concurrency),
    warmup: Number(args.warmup),
    calls: Number(args.calls),
    maxWritesPerSecond: Number(args['max-writes-per-second']),
    note: args.note,
  });
  console.log(result.markdown);
}
