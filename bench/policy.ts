/**
 * npm run bench:policy -- [--meetings 200] [--participants 20] [--window 60] [--stay 60] [--stop-at 100] [--bridges 3]
 *   [--bridges-per-meeting 2] [--max-writes-per-second 10] [--message-min-interval MS] [--cms-latency 0]
 *   [--cms-jitter 0] [--guests 0.1] [--app 0.2] [--seed 1] [--warmup 5] [--settle-timeout 60] [--redis-url URL]
 *   [--no-private-postgres] [--no-events] [--note TEXT] [--dump FILE] [--keep-database] [--results FILE] [--cpu-prof DIR]
 *
 * The security level on screen under load: the CMS simulator (in this process) runs its load plan in real time —
 * meetings x participants joining over the window across the bridges, each participant leaving after about `stay`
 * seconds — and POSTs its CDRs to cdr-ingest; policy-worker and cms-actuator run as child processes on a fresh
 * database and queue prefix and write the messages back to the simulated bridges. Redis is a private redis-server
 * persisting as deployed (AOF, appendfsync everysec) unless --redis-url names one; Postgres a private server with
 * default settings unless --no-private-postgres (then DATABASE_URL's). The run stops at `stop-at` seconds
 * (meetings still running: joins over the window, departures from about `stay` on), waits for the system to settle,
 * and reports:
 * - whether the load stayed below the write ceiling (the most message changes one bridge needed in any second),
 * - latency from the CDR that changes what a call should show to the moment the simulated call shows it, over every
 *   change written (p50/p90/p99/max), and where it went (CDR -> level decided -> CMS write; the actuator's steps),
 * - CMS writes per change (coalescing) and writes that were already stale when they arrived,
 * - write-ceiling violations and the most writes a bridge accepted in one second,
 * - the share of meetings (and call instances) whose final on-screen message is right,
 * with the commit, the command line, the Redis and Postgres settings and the machine's load average.
 * Figures go to bench/results/policy.md. This is a benchmark, not a test: it asserts nothing.
 */
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startSimulator } from '@cms/cms-sim';
import { loadConfig } from '@cms/config';
import { pg } from '@cms/db';
import { compilePolicy, desiredMessage, type Level } from '@cms/policy';
import { createRedisConnection } from '@cms/queue';
import { stringify } from 'yaml';
import { writeCeiling } from '../services/cms-actuator/src/request-gate.ts';
import { readCpu } from './lib/cpu-usage.ts';
import { ExpectedMessages, meetingText } from './lib/expected-messages.ts';
import { driveLoad } from './lib/load-driver.ts';
import { machineDescription } from './lib/machine.ts';
import { analyseLatency, maxInOneSecond, maxWritesInOneSecond, percentile, type Sample } from './lib/message-latency.ts';
import { startPrivatePostgres } from './lib/private-postgres.ts';
import { startPrivateRedis } from './lib/private-redis.ts';
import { benchCmsNodes, benchServiceEnv, type Child, freePort, freshDatabase, startService } from './lib/processes.ts';
import { codeVersion, commandLine, loadAverage, niceness, postgresSettings, redisSettings } from './lib/run-metadata.ts';

const { values: args } = parseArgs({
  allowNegative: true,
  options: {
    meetings: { type: 'string', default: '200' },
    participants: { type: 'string', default: '20' },
    window: { type: 'string', default: '60' },
    stay: { type: 'string', default: '60' },
    'stop-at': { type: 'string', default: '100' },
    bridges: { type: 'string', default: '3' },
    'bridges-per-meeting': { type: 'string', default: '2' },
    'max-writes-per-second': { type: 'string', default: '10' },
    /** Sets actuator.messageMinIntervalMs in the services' config; by default the configured value (default 200 ms). */
    'message-min-interval': { type: 'string' },
    /** Simulated CMS API response time and extra random jitter, ms. */
    'cms-latency': { type: 'string', default: '0' },
    'cms-jitter': { type: 'string', default: '0' },
    /** Use this Redis instead of a private one with AOF everysec (its persistence settings are reported). */
    'redis-url': { type: 'string' },
    /**
     * A private PostgreSQL server with default settings (as compose runs it) for the run; --no-private-postgres
     * uses DATABASE_URL's server (the machine's shared one) instead.
     */
    'private-postgres': { type: 'boolean', default: true },
    guests: { type: 'string', default: '0.1' },
    app: { type: 'string', default: '0.2' },
    seed: { type: 'string', default: '1' },
    'settle-timeout': { type: 'string', default: '60' },
    /** Meetings per bridge that join, get their message and leave before the measured run (connections, JIT). */
    warmup: { type: 'string', default: '5' },
    /**
     * Writes every latency sample (with its decision time) as JSON to this file, for a closer look, and every stale
     * write with its call's expected changes, its meeting's recorded level changes and the CDRs of their causes.
     */
    dump: { type: 'string' },
    /** Leaves the run's database in place (its URL is printed) instead of dropping it; with --no-private-postgres only. */
    'keep-database': { type: 'boolean', default: false },
    /** A line written under the figures (e.g. what else the machine was doing). */
    note: { type: 'string' },
    /** --no-events: the actuator follows the bridges by polling alone (cms.events.enabled false), to compare. */
    events: { type: 'boolean', default: true },
    /** Where the figures are appended (default bench/results/policy.md), e.g. a scratch file for exploratory pairs. */
    results: { type: 'string' },
    /** Writes a V8 CPU profile of each service (node --cpu-prof) into this folder, for a closer look. */
    'cpu-prof': { type: 'string' },
  },
});
const meetings = Number(args.meetings);
const participants = Number(args.participants);
const windowSeconds = Number(args.window);
const staySeconds = Number(args.stay);
const stopAtSeconds = Number(args['stop-at']);
const bridgeCount = Number(args.bridges);
const bridgesPerMeeting = Number(args['bridges-per-meeting']);
const maxWritesPerSecond = Number(args['max-writes-per-second']);
const guestFraction = Number(args.guests);
const appFraction = Number(args.app);
const seed = Number(args.seed);
const settleTimeoutMs = Number(args['settle-timeout']) * 1000;

// SIP participants are drawn from these equally: one domain per level.
const SECURE = 'secure.example';
const INTERNAL = 'corp.example';
const EXTERNAL = 'partner.example.org';

const log = (line: string) => process.stderr.write(`${line}\n`);
const startedAt = new Date();
const loadAtStart = loadAverage();
const children: Child[] = [];
const dir = mkdtempSync(path.join(tmpdir(), 'bench-policy-'));
const privateRedis = args['redis-url'] ? null : await startPrivateRedis();
const redisUrl = args['redis-url'] ?? (privateRedis as { url: string }).url;
const privatePostgres = args['private-postgres'] ? await startPrivatePostgres() : null;
const base = privatePostgres?.url ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const database = await freshDatabase(base, 'cms_bench_policy');
const token = 'bench-ingest-token-0123456789';
const ports = { ingest: await freePort(), ingestMetrics: await freePort(), worker: await freePort(), actuator: await freePort() };

const sim = await startSimulator({
  bridges: Array.from({ length: bridgeCount }, (_, i) => ({
    name: `cms-${i + 1}`,
    username: 'bench-api',
    password: `bench-secret-${i + 1}`,
  })),
  seed,
  cdrReceivers: [`http://127.0.0.1:${ports.ingest}/cdr/{bridge}?token=${token}`],
  faults: { maxWritesPerSecond, latencyMs: Number(args['cms-latency']), latencyJitterMs: Number(args['cms-jitter']) },
  controlPort: null,
});

const policyConfig = { secureDomains: [SECURE], internalDomains: [INTERNAL] };
const configFile = path.join(dir, 'config.yaml');
writeFileSync(
  configFile,
  stringify({
    cms: {
      nodes: benchCmsNodes(sim.bridges, maxWritesPerSecond),
      ...(args.events ? {} : { events: { enabled: false } }),
    },
    policy: policyConfig,
    ...(args['message-min-interval'] === undefined ? {} : { actuator: { messageMinIntervalMs: Number(args['message-min-interval']) } }),
  }),
);

const env = benchServiceEnv(
  {
    CONFIG_FILE: configFile,
    DATABASE_URL: database.url,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: `bench_policy_${Date.now().toString(36)}`,
    INGEST_TOKEN: token,
    ...(args['cpu-prof']
      ? { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${path.resolve(args['cpu-prof'])}`.trim() }
      : {}),
  },
  ports,
);
// The configuration exactly as the services load it (same file, same environment): the expectation uses its policy
// (defaults for messages included), and the figures its least interval between two writes to one call.
const serviceConfig = loadConfig({ env: { ...process.env, ...env } });
const policy = compilePolicy(serviceConfig.policy);
const minIntervalMs = serviceConfig.actuator.messageMinIntervalMs;
const actuatorLog = path.join(dir, 'cms-actuator.log');
try {
  children.push(await startService('cdr-ingest', env, `http://127.0.0.1:${ports.ingest}/readyz`));
  children.push(await startService('policy-worker', env, `http://127.0.0.1:${ports.worker}/readyz`));
  // At debug level the actuator logs where each write's time went ('cms write timing'); read after the run.
  children.push(
    await startService('cms-actuator', { ...env, LOG_LEVEL: 'debug' }, `http://127.0.0.1:${ports.actuator}/readyz`, {
      stdoutFile: actuatorLog,
    }),
  );
} catch (err) {
  // Leave nothing running behind: the services already started, the simulator, the database, private servers.
  for (const child of children.reverse()) await child.stop();
  await sim.stop();
  await database.drop();
  await privatePostgres?.stop();
  await privateRedis?.stop();
  throw err;
}

// Warm-up, not measured: every service connects and compiles its hot paths on a few meetings per bridge.
{
  const warm = sim.bridges.flatMap((b) =>
    Array.from({ length: Number(args.warmup) }, (_, i) => {
      const meeting = sim.startCall({ name: `Warm-up ${b.name} ${i}`, bridges: [] });
      return sim.join({ meeting, bridge: b.name, remoteParty: `warmup${i}@${SECURE}` });
    }),
  );
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !warm.every((j) => sim.inspectCall(j.callId).messageText === desiredMessage(1, policy).messageText)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const j of warm) sim.leave(j.callLegId);
  await sim.waitForCdrsDelivered({ timeoutMs: 30_000 });
}
const warmupWrites = sim.writeLog().at(-1)?.seq ?? 0;
// Each warm-up write holds a place in its bridge's write window for one window after its answer (request-gate.ts): a
// load started sooner shares the ceiling with writes its own peak count (below) never sees, and its first writes wait
// at the gate for them (measured: ~220 ms for the 6th write of cms-2's first 250 ms). The load starts once they left.
{
  const lastWarmWriteAt = sim.writeLog().at(-1)?.atMs ?? 0;
  const clear = lastWarmWriteAt + writeCeiling(maxWritesPerSecond).windowMs + 50 - Date.now();
  if (clear > 0) await new Promise((r) => setTimeout(r, clear));
}
const measuredFrom = Date.now();

// CPU each of our processes used over the measured run (from /proc): what the code costs, whatever else the machine
// runs. Postgres is the machine's shared server (other work uses it too), so it is left out.
const cpuGroups = [
  ...children.map((child) => ({ name: child.name, match: [child.process.pid ?? -1] })),
  ...(privateRedis ? [{ name: 'Redis', match: [privateRedis.pid] }] : []),
  { name: 'benchmark (simulator, driver)', match: [process.pid] },
];
const cpuBefore = readCpu(cpuGroups);
const expected = new ExpectedMessages(sim, policy);
expected.start();
log(`running ${meetings} meetings x ${participants} participants over ${windowSeconds} s on ${bridgeCount} bridges (seed ${seed})`);
const run = await driveLoad(
  sim,
  {
    meetings,
    participantsPerMeeting: participants,
    joinWindowSeconds: windowSeconds,
    durationSeconds: staySeconds,
    bridgesPerMeeting,
    domains: [SECURE, INTERNAL, EXTERNAL],
    guestFraction,
    appFraction,
  },
  { seed, stopAtSeconds },
);
const loadEndedAt = Date.now();

// Settle: every CDR delivered, then every live call showing what it should (or the timeout).
await sim.waitForCdrsDelivered({ timeoutMs: settleTimeoutMs }).catch((err: Error) => log(`CDRs not all delivered: ${err.message}`));
/** Live meetings and call instances, and how many of them show what their remaining participants call for. */
function finalMessages() {
  const counts = { meetings: 0, rightMeetings: 0, calls: 0, rightCalls: 0 };
  for (const meeting of sim.cluster.meetings.values()) {
    if (meeting.instances.size === 0) continue;
    counts.meetings++;
    const text = meetingText(sim.cluster, meeting, policy);
    let allRight = true;
    for (const call of meeting.instances.values()) {
      counts.calls++;
      const shown = sim.inspectCall(call.id);
      const right = text === '' ? !shown.messageVisible : shown.messageVisible && shown.messageText === text;
      if (right) counts.rightCalls++;
      else allRight = false;
    }
    if (allRight) counts.rightMeetings++;
  }
  return counts;
}
for (;;) {
  const { calls, rightCalls } = finalMessages();
  if (calls === rightCalls || Date.now() - loadEndedAt >= settleTimeoutMs) break;
  await new Promise((r) => setTimeout(r, 250));
}
const settleMs = Date.now() - loadEndedAt;
const cpuAfter = readCpu(cpuGroups);
const measuredSeconds = (Date.now() - measuredFrom) / 1000;
expected.stop();
const final = finalMessages();

const writes = sim.writeLog({ sinceSeq: warmupWrites });
const analysis = analyseLatency(expected.calls, writes);

// Where the time goes: the policy worker records each level change with its transaction's start time (Postgres
// now(), same host clock), which splits a sample into CDR -> decision and decision -> CMS write.
const decideMs: number[] = [];
const applyMs: number[] = [];
const decidedAt = new Map<Sample, number>();
/** Every level change the policy worker recorded (for --dump: what led to each stale write). */
const levelChangeRows: {
  meetingKey: string;
  atMs: number;
  oldLevel: number | null;
  newLevel: number | null;
  causeLegId: string | null;
  reason: unknown;
}[] = [];
{
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  const { rows } = await client.query<{
    meetingKey: string;
    atMs: number;
    oldLevel: number | null;
    newLevel: number | null;
    causeLegId: string | null;
    reason: unknown;
  }>(
    'SELECT meeting_key AS "meetingKey", extract(epoch FROM at) * 1000 AS "atMs", old_level AS "oldLevel", new_level AS "newLevel", cause_leg_id AS "causeLegId", reason FROM meeting_level_changes ORDER BY id',
  );
  levelChangeRows.push(...rows);
  await client.end();
  const changes = new Map<string, { atMs: number; text: string }[]>();
  for (const row of rows) {
    const text = desiredMessage((row.newLevel ?? null) as Level | null, policy).messageText;
    const list = changes.get(row.meetingKey) ?? [];
    list.push({ atMs: Number(row.atMs), text });
    changes.set(row.meetingKey, list);
  }
  for (const sample of analysis.samples) {
    // The decision that produced this text: the first for the meeting at or after the CDR (1 ms of clock rounding).
    const decision = changes
      .get(sample.meeting)
      ?.find((c) => c.text === sample.text && c.atMs >= sample.at - 1 && c.atMs <= sample.writtenAt);
    if (!decision) continue;
    decidedAt.set(sample, decision.atMs);
    decideMs.push(decision.atMs - sample.at);
    applyMs.push(sample.writtenAt - decision.atMs);
  }
}
const inspection = sim.inspect();
const violations = inspection.bridges.reduce((n, b) => n + b.counters.writeViolations, 0);
const refused503 = inspection.bridges.reduce((n, b) => n + b.counters.fault503 + b.counters.restarting503, 0);
const maxPerSecond = Math.max(...sim.bridges.map((b) => maxWritesInOneSecond(writes.filter((w) => w.bridge === b.name))));
const records = sim.cdrRecords().length;
const needed = analysis.written + analysis.neverWritten;
// Whether the load needed fewer writes than the ceiling allows: the most changes of what calls of one bridge should
// show within any one second (every one of them needs a write unless coalesced away).
const neededPeak = Math.max(
  ...sim.bridges.map((b) =>
    maxInOneSecond([...expected.calls.values()].filter((c) => c.bridge === b.name).flatMap((c) => c.transitions.map((t) => t.at))),
  ),
);
const belowCeiling = neededPeak <= Math.floor(maxWritesPerSecond);
// The actuator spaces two writes to one call by at least the configured interval (no flicker): a change that comes
// sooner after its call's previous write (or while that write is still under way) waits by design, unless it is to a
// worse level than that write showed (a level better than the truth is not held on screen for the interval).
const levelOfText = new Map(([1, 2, 3] as const).map((level) => [desiredMessage(level, policy).messageText, level]));
const previousText = (sample: Sample) =>
  writes.find((w) => w.method === 'PUT' && w.outcome === 'applied' && w.atMs === sample.previousWriteAt && w.url.includes(sample.callId))
    ?.params.messageText;
const soon = (sample: Sample) => sample.previousWriteAt !== null && sample.previousWriteAt + minIntervalMs > sample.at;
const worse = (sample: Sample) => {
  const before = levelOfText.get(previousText(sample) ?? '');
  const after = levelOfText.get(sample.text);
  return before !== undefined && after !== undefined && after > before;
};
const held = (sample: Sample) => soon(sample) && !worse(sample);
const latencyOf = (sample: Sample) => sample.writtenAt - sample.at;
const heldLatencies = analysis.samples.filter(held).map(latencyOf);
const steppedUpLatencies = analysis.samples.filter((sample) => soon(sample) && worse(sample)).map(latencyOf);
const notHeldLatencies = analysis.samples.filter((sample) => !held(sample)).map(latencyOf);

// The actuator's own account of each write that reached CMS (debug log 'cms write timing'), from its start on.
const timing = readFileSync(actuatorLog, 'utf8')
  .split('\n')
  .filter((line) => line.includes('"cms write timing"'))
  .map(
    (line) =>
      JSON.parse(line) as {
        time: string;
        callId: string;
        addedAt: number;
        startedAt: number;
        queuedMs: number;
        loadMs: number;
        getMs?: number;
        gateMs?: number;
        putMs?: number;
      },
  )
  .filter((t) => Date.parse(t.time) >= measuredFrom);
const steps = (key: 'queuedMs' | 'loadMs' | 'getMs' | 'gateMs' | 'putMs') => timing.map((t) => t[key] ?? 0);
// Each change whose level decision is known, followed through: decided -> its write job queued (the deciding
// transaction's commit, then the enqueue) -> the job started -> the call shows the message. The job is the one of the
// call that started before the write arrived and logged after it; a change folded into a job queued before its
// decision has no "queued" stage of its own and is left out.
const stages = { queued: [] as number[], started: [] as number[], shown: [] as number[] };
for (const sample of analysis.samples) {
  const decided = decidedAt.get(sample);
  const job = timing.find((t) => t.callId === sample.callId && t.startedAt <= sample.writtenAt && Date.parse(t.time) >= sample.writtenAt);
  if (decided === undefined || !job || job.addedAt < decided) continue;
  stages.queued.push(job.addedAt - decided);
  stages.started.push(job.startedAt - job.addedAt);
  stages.shown.push(sample.writtenAt - job.startedAt);
}

const ms = (v: number) => (Number.isNaN(v) ? 'n/a' : `${Math.round(v)} ms`);
const p50p99 = (values: readonly number[]) => `${ms(percentile(values, 50))} / ${ms(percentile(values, 99))}`;
const countP50Max = (values: readonly number[]) =>
  `${values.length}, ${ms(percentile(values, 50))} / ${ms(values.length ? Math.max(...values) : Number.NaN)}`;
const pct = (a: number, b: number) => (b === 0 ? 'n/a' : `${((100 * a) / b).toFixed(1)} %`);
const cmsLatency = `${args['cms-latency']} ms + up to ${args['cms-jitter']} ms jitter`;

const rows: [string, string, string][] = [
  [
    'meetings x participants, join window, stay, stopped at',
    `${meetings} x ${participants}, ${windowSeconds} s, ~${staySeconds} s, ${stopAtSeconds} s`,
    '',
  ],
  ['bridges (per meeting), maxWritesPerSecond per bridge', `${bridgeCount} (${bridgesPerMeeting}), ${maxWritesPerSecond}`, ''],
  ['CMS API response time (simulated)', cmsLatency, ''],
  ['least interval between two writes to one call (actuator.messageMinIntervalMs, as configured)', `${minIntervalMs} ms`, ''],
  ['joins / leaves driven (max driver lag)', `${run.joins} / ${run.leaves} (${Math.round(run.maxLagMs)} ms)`, ''],
  ['CDRs generated', String(records), ''],
  [
    'most message changes one bridge needed in any 1 s',
    `${neededPeak} (${belowCeiling ? 'below' : 'ABOVE'} the ceiling of ${maxWritesPerSecond})`,
    '',
  ],
  ['expected message changes (call instances)', `${analysis.transitions} (${expected.calls.size} calls)`, ''],
  ['  written while current (latency samples)', String(analysis.written), ''],
  ['  superseded before written (coalesced)', String(analysis.superseded), ''],
  ['  already shown, no write needed', String(analysis.alreadyShown), ''],
  ['  final change never written', String(analysis.neverWritten), '0'],
  [
    `latency CDR -> call shows the message, every change written (${analysis.written}), p50 / p90`,
    `${ms(percentile(analysis.latenciesMs, 50))} / ${ms(percentile(analysis.latenciesMs, 90))}`,
    '',
  ],
  [
    'latency CDR -> call shows the message, p99',
    ms(percentile(analysis.latenciesMs, 99)),
    belowCeiling ? '<= 250 ms (below the ceiling)' : '',
  ],
  ['latency CDR -> call shows the message, max', ms(analysis.latenciesMs.length ? Math.max(...analysis.latenciesMs) : Number.NaN), ''],
  [
    `  changes sooner than ${minIntervalMs} ms after their call's previous write, not to a worse level (held by design): count, p50 / max`,
    countP50Max(heldLatencies),
    '',
  ],
  [
    `  changes sooner than ${minIntervalMs} ms after their call's previous write, to a worse level (not held since 2026-12-07): count, p50 / max`,
    countP50Max(steppedUpLatencies),
    '',
  ],
  [`  the other changes (${notHeldLatencies.length}), p50 / p99`, p50p99(notHeldLatencies), ''],
  [`  CDR -> level decided, p50 / p99 (${decideMs.length} changes of a meeting's level)`, p50p99(decideMs), ''],
  ['  level decided -> call shows the message, p50 / p99', p50p99(applyMs), ''],
  [`    decided -> write job queued (commit, enqueue), p50 / p99 (${stages.queued.length} changes)`, p50p99(stages.queued), ''],
  ['    job queued -> started, p50 / p99', p50p99(stages.started), ''],
  ['    job started -> call shows the message (read, GET, gate, PUT), p50 / p99', p50p99(stages.shown), ''],
  [`  actuator, per write (${timing.length}): job added -> started, p50 / p99`, p50p99(steps('queuedMs')), ''],
  ['  actuator: desired state read (Postgres), p50 / p99', p50p99(steps('loadMs')), ''],
  ['  actuator: GET of the call (CMS; sent with the read, so only its wait beyond the read), p50 / p99', p50p99(steps('getMs')), ''],
  ['  actuator: write gate (ceiling), p50 / p99', p50p99(steps('gateMs')), ''],
  ['  actuator: PUT (CMS, to its answer), p50 / p99', p50p99(steps('putMs')), ''],
  [
    `CPU our processes used over the ${Math.round(measuredSeconds)} s measured (share of one core)`,
    cpuBefore && cpuAfter
      ? [...cpuAfter]
          .map(([name, seconds]) => {
            const used = seconds - (cpuBefore.get(name) ?? 0);
            return `${name} ${used.toFixed(1)} s (${Math.round((100 * used) / measuredSeconds)} %)`;
          })
          .join(', ')
      : 'n/a (no /proc)',
    '',
  ],
  ['jobs added per queue, whole run (BullMQ job ids)', await jobsPerQueue(), ''],
  ['CMS message writes accepted', String(analysis.acceptedWrites), ''],
  ['  stale on arrival (text no longer expected)', String(analysis.staleWrites), ''],
  [
    'writes per needed change (accepted / (written + never written))',
    needed ? (analysis.acceptedWrites / needed).toFixed(3) : 'n/a',
    '<= 1.1',
  ],
  [
    'writes per expected change (accepted / all changes)',
    analysis.transitions ? (analysis.acceptedWrites / analysis.transitions).toFixed(3) : 'n/a',
    '',
  ],
  ['write-ceiling violations (simulator)', String(violations), '0'],
  ['most writes one bridge accepted in 1 s', String(maxPerSecond), `<= ${maxWritesPerSecond}`],
  ['other 503 answers (faults)', String(refused503), ''],
  [
    'meetings with the right final message',
    `${final.rightMeetings} / ${final.meetings} (${pct(final.rightMeetings, final.meetings)})`,
    '100 %',
  ],
  ['call instances with the right final message', `${final.rightCalls} / ${final.calls} (${pct(final.rightCalls, final.calls)})`, '100 %'],
  ['settled after the last step', `${(settleMs / 1000).toFixed(1)} s`, ''],
];
/** Each queue's job counter (BullMQ's `<prefix>:<queue>:id`): how many jobs of each kind the run made, warm-up included. */
async function jobsPerQueue(): Promise<string> {
  const redis = createRedisConnection(redisUrl, 'worker');
  try {
    const counts: string[] = [];
    for (let cursor = '0'; ; ) {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${env.QUEUE_PREFIX}:*:id`, 'COUNT', 1000);
      for (const key of keys) counts.push(`${key.slice(env.QUEUE_PREFIX.length + 1, -3)} ${(await redis.get(key)) ?? '0'}`);
      cursor = next;
      if (cursor === '0') break;
    }
    return counts.sort().join(', ') || 'none';
  } finally {
    redis.disconnect();
  }
}
const table = ['| measure | value | goal |', '|---|---|---|', ...rows.map(([k, v, g]) => `| ${k} | ${v} | ${g} |`)].join('\n');
console.log(table);
if (args.dump) {
  const dump = analysis.samples.map((s) => ({ ...s, latencyMs: s.writtenAt - s.at, decidedAt: decidedAt.get(s) ?? null, held: held(s) }));
  // Each write whose text was not what its call should show on arrival, with the call's expected changes, its
  // meeting's recorded level changes and the CDRs of the legs that caused them: why an intermediate level was written.
  const stale = [];
  for (const call of expected.calls.values()) {
    for (const write of writes) {
      if (write.outcome !== 'applied' || write.method !== 'PUT' || !write.url.includes(call.callId)) continue;
      const text = write.params.messageText;
      if (text === undefined) continue;
      const expectedText = call.transitions.filter((t) => t.at <= write.atMs).at(-1)?.text ?? '';
      if (expectedText === text) continue;
      const levelChanges = levelChangeRows.filter((r) => r.meetingKey === call.meeting && Math.abs(r.atMs - write.atMs) < 2000);
      const causeLegs = new Set(levelChanges.map((r) => r.causeLegId));
      const cdrs = sim
        .cdrRecords()
        .filter((r) => causeLegs.has(r.objectId))
        .map((r) => ({
          type: r.type,
          time: r.time,
          session: r.session,
          correlatorIndex: r.correlatorIndex,
          leg: r.objectId,
          body: r.body,
        }));
      stale.push({
        callId: call.callId,
        bridge: call.bridge,
        meeting: call.meeting,
        at: write.atMs,
        text,
        expectedText,
        transitions: call.transitions,
        levelChanges,
        cdrs,
      });
    }
  }
  writeFileSync(args.dump, JSON.stringify({ samples: dump, stale, timing }, null, 1));
}
if (run.errors.length) log(`driver errors (${run.errors.length}): ${run.errors.slice(0, 5).join('; ')}`);
if (analysis.unknownCallWrites) log(`${analysis.unknownCallWrites} writes to calls the tracker never saw`);

const about = [
  `Machine: ${machineDescription()}; load average (1 / 5 / 15 min) at start ${loadAtStart}, at end ${loadAverage()}; ${niceness()}`,
  `Code: ${codeVersion()}`,
  `Command: \`${commandLine('bench:policy')}\``,
  `Redis: ${await redisSettings(redisUrl)}${privateRedis ? " (the benchmark's own redis-server, persisting as deployed)" : ''}`,
  `Postgres: ${await postgresSettings(database.url)}${privatePostgres ? " (the benchmark's own server, default settings as compose runs it)" : " (the machine's shared server)"}`,
];
const file = args.results ? path.resolve(args.results) : new URL('./results/policy.md', import.meta.url).pathname;
if (!existsSync(file)) writeFileSync(file, '# Security-level benchmark results\n\nMethod: see the header of bench/policy.ts.\n');
appendFileSync(
  file,
  `\n## ${startedAt.toISOString()}\n\n${about.map((line) => `- ${line}`).join('\n')}\n\n${table}\n${args.note ? `\nNote: ${args.note}\n` : ''}`,
);
console.log(`\nwritten to ${file}`);

for (const child of children.reverse()) await child.stop();
await sim.stop();
if (args['keep-database'] && !privatePostgres) log(`database kept: ${database.url}`);
else await database.drop();
await privatePostgres?.stop();
if (privateRedis) await privateRedis.stop();
else {
  // The run's queues are of no further use: remove its keys from the shared Redis.
  const redis = createRedisConnection(redisUrl, 'worker');
  for (let cursor = '0'; ; ) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${env.QUEUE_PREFIX}:*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
  redis.disconnect();
}
rmSync(dir, { recursive: true, force: true });
