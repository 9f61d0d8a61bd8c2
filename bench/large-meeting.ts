/**
 * node bench/large-meeting.ts [--participants 1000] [--bridges 4] [--burst 40] [--churn 60] [--churn-rate 4]
 *   [--external-every 5] [--external-stay 2] [--max-writes-per-second 10] [--no-events] [--seed 1] [--note TEXT]
 *   [--results FILE]
 *
 * One distributed meeting of a thousand: `participants` join it over `burst` seconds, spread over `bridges` simulated
 * Call Bridges (one call instance each), secure and internal participants (the meeting at level 2); then for `churn`
 * seconds `churn-rate` participants a second leave and as many join, and every `external-every` seconds an external
 * participant joins and leaves `external-stay` seconds later, taking the meeting to level 3 and back (the worst
 * participant leaving). Everything goes the real way: the simulator (in this process) POSTs its CDRs to cdr-ingest,
 * policy-worker and cms-actuator run as child processes on a fresh database of a private PostgreSQL and a private
 * Redis, and the actuator writes the messages back to the simulated bridges (and follows their events feed).
 *
 * Reports, for the burst and the churn separately:
 * - the worker's decision time per transaction (policy_decision_seconds, p50/p99 from its histogram buckets, read
 *   from /metrics before and after the phase), split by what a decision read: `changed` (the changed legs and each
 *   instance's worst stored participant) or `all` (every leg of the meeting: recomputes asked for by the events feed,
 *   an instance decided for the first time); and the legs each read (policy_decision_legs_read);
 * - the group commit time around it (cdr_group_commit_seconds: storing the CDRs and deciding);
 * - the policy worker's CPU;
 * and over the whole run: CMS message writes per level change that needed one (from the simulator's write log, as
 * bench/policy.ts counts them; goal <= 1.1), write-ceiling violations (the simulator's /inspect counters; goal 0),
 * latency from the CDR to the call showing the message, and whether every call ends showing the right message.
 * Figures are appended to bench/results/large-meeting.md with the machine, commit and load average.
 *
 * `runLargeMeeting(options)` runs the same from another script (bench:scale) and returns the figures.
 * This is a benchmark, not a test: it asserts nothing.
 */
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { mulberry32, type Simulator, startSimulator } from '@cms/cms-sim';
import { loadConfig } from '@cms/config';
import { pg } from '@cms/db';
import { compilePolicy } from '@cms/policy';
import { readCpu } from './lib/cpu-usage.ts';
import { ExpectedMessages, meetingText } from './lib/expected-messages.ts';
import { machineDescription } from './lib/machine.ts';
import { analyseLatency, maxWritesInOneSecond, percentile } from './lib/message-latency.ts';
import { startPrivatePostgres } from './lib/private-postgres.ts';
import { startPrivateRedis } from './lib/private-redis.ts';
import { benchCmsNodes, benchServiceEnv, type Child, freePort, freshDatabase, startService } from './lib/processes.ts';
import { codeVersion, commandLine, loadAverage, niceness, postgresSettings, redisSettings } from './lib/run-metadata.ts';

export interface LargeMeetingOptions {
  /** Participants joining in the burst; default 1000. */
  participants?: number;
  /** Simulated Call Bridges the meeting spans (one call instance each); default 4. */
  bridges?: number;
  /** Seconds the burst of joins is spread over; default 40. */
  burstSeconds?: number;
  /** Seconds of churn after the burst; default 60. */
  churnSeconds?: number;
  /** Participants leaving (and as many joining) per second of churn; default 4. */
  churnPerSecond?: number;
  /** An external participant joins every this many seconds of churn (0: never); default 5. */
  externalEverySeconds?: number;
  /** ... and leaves after this many seconds; default 2. */
  externalStaySeconds?: number;
  /** Each bridge's write ceiling (ours and the simulator's); default 10. */
  maxWritesPerSecond?: number;
  /** The actuator follows the bridges' events feed (default true), or polls only. */
  events?: boolean;
  seed?: number;
  /** Where the results block is appended; default bench/results/large-meeting.md; null: not written. */
  resultsFile?: string | null;
  note?: string;
  log?: (line: string) => void;
}

/** p50 / p99 of one histogram over a phase (null where nothing was observed), and how many observations. */
export interface HistogramFigure {
  count: number;
  p50: number | null;
  p99: number | null;
  mean: number | null;
}

export interface PhaseFigures {
  name: string;
  seconds: number;
  /** Decision time per transaction, s, by what it read (`changed`, `all`). */
  decisionSeconds: Record<string, HistogramFigure>;
  /** Legs read per transaction, by what it read. */
  legsRead: Record<string, HistogramFigure>;
  groupCommitSeconds: HistogramFigure;
  /** CPU seconds the policy worker used in the phase. */
  workerCpuSeconds: number | null;
}

export interface LargeMeetingResult {
  phases: PhaseFigures[];
  joins: number;
  leaves: number;
  levelChanges: number;
  /** Instance message changes that needed a CMS write (written while current, or never written). */
  neededChanges: number;
  acceptedWrites: number;
  writesPerChange: number | null;
  ceilingViolations: number;
  mostWritesInOneSecond: number;
  latencyMs: { p50: number; p99: number };
  finalRight: { calls: number; right: number };
  markdown: string;
}

// SIP participants of each level: one domain per level.
const SECURE = 'secure.example';
const INTERNAL = 'corp.example';
const EXTERNAL = 'partner.example.org';

type Metrics = Map<string, number>;

/** The worker's /metrics as `name{labels}` -> value. */
async function scrape(url: string): Promise<Metrics> {
  const text = await (await fetch(url)).text();
  const out: Metrics = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/**
 * A histogram's figures between two scrapes: p50/p99 interpolated within the bucket they fall in (as Prometheus's
 * histogram_quantile does), the mean from _sum/_count. `labels` selects the series (e.g. `legs="changed"`).
 */
function histogram(before: Metrics, after: Metrics, name: string, labels = ''): HistogramFigure {
  const buckets: { le: number; count: number }[] = [];
  for (const [key, value] of after) {
    if (!key.startsWith(`${name}_bucket{`)) continue;
    if (labels && !key.includes(labels)) continue;
    const le = /le="([^"]+)"/.exec(key)?.[1];
    if (!le) continue;
    buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: value - (before.get(key) ?? 0) });
  }
  buckets.sort((a, b) => a.le - b.le);
  // Every series carries the registry's default labels (service=...): match by name and the asked-for labels.
  const total = (suffix: string, metrics: Metrics) => {
    let n = 0;
    for (const [key, value] of metrics) if (key.startsWith(`${name}_${suffix}`) && (!labels || key.includes(labels))) n += value;
    return n;
  };
  const count = total('count', after) - total('count', before);
  const sum = total('sum', after) - total('sum', before);
  const quantile = (q: number): number | null => {
    if (!count) return null;
    const rank = q * count;
    let lower = 0;
    let below = 0;
    for (const b of buckets) {
      if (b.count >= rank) {
        if (!Number.isFinite(b.le)) return lower;
        return lower + ((b.le - lower) * (rank - below)) / Math.max(1, b.count - below);
      }
      lower = b.le;
      below = b.count;
    }
    return lower;
  };
  return { count, p50: quantile(0.5), p99: quantile(0.99), mean: count ? sum / count : null };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

export async function runLargeMeeting(options: LargeMeetingOptions = {}): Promise<LargeMeetingResult> {
  const o = {
    participants: options.participants ?? 1000,
    bridges: options.bridges ?? 4,
    burstSeconds: options.burstSeconds ?? 40,
    churnSeconds: options.churnSeconds ?? 60,
    churnPerSecond: options.churnPerSecond ?? 4,
    externalEverySeconds: options.externalEverySeconds ?? 5,
    externalStaySeconds: options.externalStaySeconds ?? 2,
    maxWritesPerSecond: options.maxWritesPerSecond ?? 10,
    events: options.events ?? true,
    seed: options.seed ?? 1,
  };
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const startedAt = new Date();
  const loadAtStart = loadAverage();
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-large-meeting-'));
  const children: Child[] = [];
  const privateRedis = await startPrivateRedis();
  const privatePostgres = await startPrivatePostgres();
  const database = await freshDatabase(privatePostgres.url, 'cms_bench_large_meeting');
  const token = 'bench-ingest-token-0123456789';
  const ports = { ingest: await freePort(), ingestMetrics: await freePort(), worker: await freePort(), actuator: await freePort() };
  let sim: Simulator | null = null;
  try {
    sim = await startSimulator({
      bridges: Array.from({ length: o.bridges }, (_, i) => ({
        name: `cms-${i + 1}`,
        username: 'bench-api',
        password: `bench-secret-${i + 1}`,
      })),
      seed: o.seed,
      cdrReceivers: [`http://127.0.0.1:${ports.ingest}/cdr/{bridge}?token=${token}`],
      faults: { maxWritesPerSecond: o.maxWritesPerSecond },
      controlPort: null,
    });
    const configFile = path.join(dir, 'config.yaml');
    writeFileSync(
      configFile,
      JSON.stringify({
        cms: {
          nodes: benchCmsNodes(sim.bridges, o.maxWritesPerSecond),
          ...(o.events ? {} : { events: { enabled: false } }),
        },
        policy: { secureDomains: [SECURE], internalDomains: [INTERNAL] },
      }),
    );
    const env = benchServiceEnv(
      {
        CONFIG_FILE: configFile,
        DATABASE_URL: database.url,
        REDIS_URL: privateRedis.url,
        QUEUE_PREFIX: `bench_large_${Date.now().toString(36)}`,
        INGEST_TOKEN: token,
      },
      ports,
    );
    const policy = compilePolicy(loadConfig({ env: { ...process.env, ...env } }).policy);
    children.push(await startService('cdr-ingest', env, `http://127.0.0.1:${ports.ingest}/readyz`));
    const worker = await startService('policy-worker', env, `http://127.0.0.1:${ports.worker}/readyz`);
    children.push(worker);
    children.push(await startService('cms-actuator', env, `http://127.0.0.1:${ports.actuator}/readyz`));
    const metricsUrl = `http://127.0.0.1:${ports.worker}/metrics`;
    const cpu = () => readCpu([{ name: 'worker', match: [worker.process.pid ?? -1] }])?.get('worker') ?? null;
    const simulator = sim;

    // Every live call shows what its meeting's participants call for (or the timeout): the phase has been decided and written.
    const finalMessages = () => {
      let calls = 0;
      let right = 0;
      for (const meeting of simulator.cluster.meetings.values()) {
        const text = meetingText(simulator.cluster, meeting, policy);
        for (const call of meeting.instances.values()) {
          calls++;
          const shown = simulator.inspectCall(call.id);
          if (text === '' ? !shown.messageVisible : shown.messageVisible && shown.messageText === text) right++;
        }
      }
      return { calls, right };
    };
    const settle = async () => {
      await simulator.waitForCdrsDelivered({ timeoutMs: 120_000 }).catch((err: Error) => log(`CDRs not all delivered: ${err.message}`));
      const deadline = Date.now() + 60_000;
      for (;;) {
        const { calls, right } = finalMessages();
        if (calls === right || Date.now() > deadline) break;
        await sleep(250);
      }
      // The events feed's recomputes of the last roster changes (coalesced, and after the grace of roster-only
      // participants) land within a few seconds: let them into this phase rather than the next.
      await sleep(3_000);
    };

    const expected = new ExpectedMessages(simulator, policy);
    expected.start();
    const meeting = simulator.startCall({ name: 'All hands', bridges: [] });
    const bridgeNames = simulator.bridges.map((b) => b.name);
    const random = mulberry32(o.seed);
    const present: string[] = [];
    let joins = 0;
    let leaves = 0;
    let serial = 0;
    const join = (domain: string) => {
      const bridge = bridgeNames[joins % bridgeNames.length] as string;
      const joined = simulator.join({ meeting, bridge, remoteParty: `p${serial++}@${domain}` });
      joins++;
      return joined.callLegId;
    };
    const leave = (legId: string) => {
      simulator.leave(legId);
      leaves++;
    };
    const member = () => join(random() < 0.7 ? SECURE : INTERNAL);

    const phases: PhaseFigures[] = [];
    const phase = async (name: string, drive: () => Promise<void>) => {
      const before = await scrape(metricsUrl);
      const cpuBefore = cpu();
      const t0 = Date.now();
      await drive();
      await settle();
      const after = await scrape(metricsUrl);
      const cpuAfter = cpu();
      const byLegs = (metric: string) =>
        Object.fromEntries(['changed', 'all'].map((legs) => [legs, histogram(before, after, metric, `legs="${legs}"`)]));
      phases.push({
        name,
        seconds: (Date.now() - t0) / 1000,
        decisionSeconds: byLegs('policy_decision_seconds'),
        legsRead: byLegs('policy_decision_legs_read'),
        groupCommitSeconds: histogram(before, after, 'cdr_group_commit_seconds'),
        workerCpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
      });
      log(`${name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    };

    log(`burst: ${o.participants} participants over ${o.burstSeconds} s on ${o.bridges} bridges`);
    await phase('burst of joins', async () => {
      const t0 = Date.now();
      for (let i = 0; i < o.participants; i++) {
        await sleep(t0 + (i * o.burstSeconds * 1000) / o.participants - Date.now());
        present.push(member());
      }
    });
    log(`churn: ${o.churnPerSecond}/s leave and join for ${o.churnSeconds} s, an external participant every ${o.externalEverySeconds} s`);
    await phase('churn', async () => {
      const t0 = Date.now();
      const steps = Math.round(o.churnSeconds * o.churnPerSecond);
      const externals: { legId: string; leaveAt: number }[] = [];
      let nextExternal = o.externalEverySeconds > 0 ? t0 + o.externalEverySeconds * 1000 : Number.POSITIVE_INFINITY;
      for (let i = 0; i < steps; i++) {
        await sleep(t0 + (i * 1000) / o.churnPerSecond - Date.now());
        const [legId] = present.splice(Math.floor(random() * present.length), 1);
        if (legId) leave(legId);
        present.push(member());
        const now = Date.now();
        if (now >= nextExternal) {
          externals.push({ legId: join(EXTERNAL), leaveAt: now + o.externalStaySeconds * 1000 });
          nextExternal += o.externalEverySeconds * 1000;
        }
        while (externals.length && (externals[0] as { leaveAt: number }).leaveAt <= now)
          leave((externals.shift() as { legId: string }).legId);
      }
      for (const e of externals) {
        await sleep(e.leaveAt - Date.now());
        leave(e.legId);
      }
    });
    expected.stop();

    const writes = simulator.writeLog();
    const analysis = analyseLatency(expected.calls, writes);
    const inspection = simulator.inspect();
    const violations = inspection.bridges.reduce((n, b) => n + b.counters.writeViolations, 0);
    const mostPerSecond = Math.max(...bridgeNames.map((b) => maxWritesInOneSecond(writes.filter((w) => w.bridge === b))));
    const needed = analysis.written + analysis.neverWritten;
    const final = finalMessages();
    const levelChanges = await countLevelChanges(database.url);

    const ms = (s: number | null) => (s === null ? 'n/a' : `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms`);
    const num = (v: number | null) => (v === null ? 'n/a' : v.toFixed(1));
    const rows: [string, string, string][] = [
      [
        'participants, bridges, burst',
        `${o.participants} over ${o.bridges} bridges (one call instance each), joined over ${o.burstSeconds} s`,
        '',
      ],
      [
        'churn',
        `${o.churnPerSecond}/s leave + join for ${o.churnSeconds} s; an external participant every ${o.externalEverySeconds} s for ${o.externalStaySeconds} s`,
        '',
      ],
      ['events feed', o.events ? 'on (roster changes ask for recomputes)' : 'off (polling)', ''],
      ['joins / leaves driven', `${joins} / ${leaves}`, ''],
    ];
    for (const p of phases) {
      const changed = p.decisionSeconds.changed as HistogramFigure;
      const all = p.decisionSeconds.all as HistogramFigure;
      rows.push(
        [`**${p.name}** (${p.seconds.toFixed(0)} s to settle)`, '', ''],
        [
          '  decision time per transaction, from the changed legs: count, p50 / p99',
          `${changed.count}, ${ms(changed.p50)} / ${ms(changed.p99)}`,
          'does not grow with the meeting',
        ],
        [
          '  legs read per such transaction: mean, p99',
          `${num(p.legsRead.changed?.mean ?? null)}, ${num(p.legsRead.changed?.p99 ?? null)}`,
          'the changed legs',
        ],
        ['  decision time per transaction, from every leg: count, p50 / p99', `${all.count}, ${ms(all.p50)} / ${ms(all.p99)}`, ''],
        ['  legs read per such transaction: mean', num(p.legsRead.all?.mean ?? null), ''],
        [
          '  group commit (store CDRs + decide): count, p50 / p99',
          `${p.groupCommitSeconds.count}, ${ms(p.groupCommitSeconds.p50)} / ${ms(p.groupCommitSeconds.p99)}`,
          '',
        ],
        ['  policy worker CPU', p.workerCpuSeconds === null ? 'n/a' : `${p.workerCpuSeconds.toFixed(1)} s`, ''],
      );
    }
    rows.push(
      ['meeting level changes recorded', String(levelChanges), ''],
      ['instance message changes needing a write (written + never written)', String(needed), ''],
      ['CMS message writes accepted', String(analysis.acceptedWrites), ''],
      ['writes per change', needed ? (analysis.acceptedWrites / needed).toFixed(3) : 'n/a', '<= 1.1'],
      ['write-ceiling violations (simulator /inspect)', String(violations), '0'],
      ['most writes one bridge accepted in 1 s', String(mostPerSecond), `<= ${o.maxWritesPerSecond}`],
      [
        'latency CDR -> call shows the message, p50 / p99',
        `${Math.round(percentile(analysis.latenciesMs, 50))} ms / ${Math.round(percentile(analysis.latenciesMs, 99))} ms`,
        '',
      ],
      ['calls showing the right message at the end', `${final.right} / ${final.calls}`, 'all'],
    );
    const table = ['| measure | value | goal |', '|---|---|---|', ...rows.map(([k, v, g]) => `| ${k} | ${v} | ${g} |`)].join('\n');
    const about = [
      `Machine: ${machineDescription()}, shared with other sessions' work; load average (1 / 5 / 15 min) at start ${loadAtStart}, at end ${loadAverage()}; ${niceness()}`,
      `Code: ${codeVersion()}`,
      `Command: \`${commandLine('bench:large-meeting')}\``,
      `Redis: ${await redisSettings(privateRedis.url)} (the benchmark's own redis-server)`,
      `Postgres: ${await postgresSettings(database.url)} (the benchmark's own server, default settings)`,
    ];
    const markdown = `## ${startedAt.toISOString()}\n\n${about.map((line) => `- ${line}`).join('\n')}\n\n${table}\n${options.note ? `\nNote: ${options.note}\n` : ''}`;
    const file = options.resultsFile === undefined ? new URL('./results/large-meeting.md', import.meta.url).pathname : options.resultsFile;
    if (file) {
      if (!existsSync(file))
        writeFileSync(file, '# A meeting of a thousand: benchmark results\n\nMethod: see the header of bench/large-meeting.ts.\n');
      appendFileSync(file, `\n${markdown}`);
    }
    return {
      phases,
      joins,
      leaves,
      levelChanges,
      neededChanges: needed,
      acceptedWrites: analysis.acceptedWrites,
      writesPerChange: needed ? analysis.acceptedWrites / needed : null,
      ceilingViolations: violations,
      mostWritesInOneSecond: mostPerSecond,
      latencyMs: { p50: percentile(analysis.latenciesMs, 50), p99: percentile(analysis.latenciesMs, 99) },
      finalRight: final,
      markdown,
    };
  } finally {
    for (const child of children.reverse()) await child.stop();
    await sim?.stop();
    await database.drop();
    await privatePostgres.stop();
    await privateRedis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function countLevelChanges(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM meeting_level_changes');
    return Number(rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

if (import.meta.main) {
  const { values: args } = parseArgs({
    allowNegative: true,
    options: {
      participants: { type: 'string', default: '1000' },
      bridges: { type: 'string', default: '4' },
      burst: { type: 'string', default: '40' },
      churn: { type: 'string', default: '60' },
      'churn-rate': { type: 'string', default: '4' },
      'external-every': { type: 'string', default: '5' },
      'external-stay': { type: 'string', default: '2' },
      'max-writes-per-second': { type: 'string', default: '10' },
      events: { type: 'boolean', default: true },
      seed: { type: 'string', default: '1' },
      note: { type: 'string' },
      /** Where the figures are appended (default bench/results/large-meeting.md), e.g. a scratch file. */
      results: { type: 'string' },
    },
  });
  const result = await runLargeMeeting({
    participants: Number(args.participants),
    bridges: Number(args.bridges),
    burstSeconds: Number(args.burst),
    churnSeconds: Number(args.churn),
    churnPerSecond: Number(args['churn-rate']),
    externalEverySeconds: Number(args['external-every']),
    externalStaySeconds: Number(args['external-stay']),
    maxWritesPerSecond: Number(args['max-writes-per-second']),
    events: args.events,
    seed: Number(args.seed),
    note: args.note,
    ...(args.results ? { resultsFile: path.resolve(args.results) } : {}),
  });
  console.log(result.markdown);
}
