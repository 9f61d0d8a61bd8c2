/**
 * npm run bench:control -- [--max-writes-per-second 10] [--meetings 200] [--participants 6] [--window 60] [--stay 60]
 *   [--flap-meetings 8] [--flap-hz 4] [--idle-actions 20] [--actions 60] [--action-interval-ms 400]
 *   [--freshness-samples 30] [--actuators 1] [--reserved 1] [--seed 1] [--note TEXT]
 *
 * Operator actions under a saturated write ceiling. The CMS simulator (in this process) has two bridges; cdr-ingest,
 * policy-worker, cms-actuator (`--actuators` replicas of it, sharing the queues, limiter and write gate) and
 * records-api run as child processes on a fresh database and queue prefix (the machine's Postgres and Redis,
 * DATABASE_URL / REDIS_URL). A control meeting of four participants runs on cms-1.
 * The benchmark
 * 1. sends `--idle-actions` mute/unmute requests (PATCH /calls/<id>/participants/<legId>) one at a time with no load,
 * 2. starts the simulator's load plan (meetings x participants joining over the window on both bridges) and
 *    `--flap-meetings` meetings on cms-1 whose level flips `--flap-hz` times a second (an external guest joins and
 *    leaves beside a secure participant): together their security messages need more writes than cms-1's ceiling
 *    allows; once cms-1 writes messages at its ceiling,
 * 3. sends `--actions` requests the same way while the load runs,
 * and reports, per phase, the time from the action's acceptance (operator_actions.created_at) to its PUT arriving at
 * the simulated bridge (the simulator's write log, same host clock), p50/p90/p99/max; how saturated cms-1 was (message
 * PUTs per second while actions ran); ceiling violations (the simulator's writeViolations counter: a write beyond
 * maxWritesPerSecond in any one-second window); and the live-view freshness: a mute changed on the bridge (simulator
 * driver, no API write) until GET /api/v1/calls/<id> shows it on the leg's `live.audioMuted`, p50/p99.
 * Figures go to bench/results/control.md. A benchmark, not a test: it asserts nothing.
 */
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startSimulator } from '@cms/cms-sim';
import { createCmsWritesQueue, createRedisConnection } from '@cms/queue';
import { driveLoad } from './lib/load-driver.ts';
import { machineDescription } from './lib/machine.ts';
import { percentile } from './lib/message-latency.ts';
import { benchCmsNodes, benchServiceEnv, type Child, freePort, freshDatabase, startService } from './lib/processes.ts';
import { codeVersion, commandLine, loadAverage } from './lib/run-metadata.ts';

const { values: args } = parseArgs({
  options: {
    'max-writes-per-second': { type: 'string', default: '10' },
    meetings: { type: 'string', default: '200' },
    participants: { type: 'string', default: '6' },
    'flap-meetings': { type: 'string', default: '8' },
    'flap-hz': { type: 'string', default: '4' },
    window: { type: 'string', default: '60' },
    stay: { type: 'string', default: '60' },
    'idle-actions': { type: 'string', default: '20' },
    actions: { type: 'string', default: '60' },
    'action-interval-ms': { type: 'string', default: '400' },
    'freshness-samples': { type: 'string', default: '30' },
    actuators: { type: 'string', default: '1' },
    // actuator.interactiveReservedWrites: places of each window only operator actions may take (its default, 1).
    reserved: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    note: { type: 'string' },
  },
});
const maxWritesPerSecond = Number(args['max-writes-per-second']);
const reserved = Number(args.reserved);
/** The most message PUTs a second can hold: the ceiling less the places kept for operator actions. */
const messageShare = Math.floor(maxWritesPerSecond) - reserved;
const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const startedAt = new Date();
// The code that runs is the code at the start (later edits to the working tree do not reach the started services).
const version = codeVersion();
const loadAtStart = loadAverage();
const children: Child[] = [];
const dir = mkdtempSync(path.join(tmpdir(), 'bench-control-'));
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const database = await freshDatabase(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', 'cms_bench_control');
const ingestToken = 'bench-ingest-token-0123456789';
const operatorToken = 'bench-operator-token-0123456789';
const ports = {
  ingest: await freePort(),
  ingestMetrics: await freePort(),
  worker: await freePort(),
  actuator: await freePort(),
  api: await freePort(),
  apiMetrics: await freePort(),
};
const SECURE = 'secure.example';
const INTERNAL = 'corp.example';
const EXTERNAL = 'partner.example.org';

const sim = await startSimulator({
  bridges: ['cms-1', 'cms-2'].map((name, i) => ({ name, username: 'bench-api', password: `bench-secret-${i + 1}` })),
  seed: Number(args.seed),
  cdrReceivers: [`http://127.0.0.1:${ports.ingest}/cdr/{bridge}?token=${ingestToken}`],
  faults: { maxWritesPerSecond },
  controlPort: null,
});
const configFile = path.join(dir, 'config.yaml');
writeFileSync(
  configFile,
  JSON.stringify({
    cms: { nodes: benchCmsNodes(sim.bridges, maxWritesPerSecond) },
    policy: { secureDomains: [SECURE], internalDomains: [INTERNAL] },
    actuator: { interactiveReservedWrites: reserved },
    api: { tokens: [{ name: 'bench-operator', token: operatorToken, role: 'operator' }] },
  }),
);
const queuePrefix = `bench_control_${Date.now().toString(36)}`;
const env = benchServiceEnv(
  {
    CONFIG_FILE: configFile,
    DATABASE_URL: database.url,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: queuePrefix,
    INGEST_TOKEN: ingestToken,
    API_TOKEN: 'bench-admin-token-0123456789abcdef',
  },
  ports,
);
children.push(await startService('cdr-ingest', env, `http://127.0.0.1:${ports.ingest}/readyz`));
children.push(await startService('policy-worker', env, `http://127.0.0.1:${ports.worker}/readyz`));
children.push(await startService('cms-actuator', env, `http://127.0.0.1:${ports.actuator}/readyz`));
for (let replica = 2; replica <= Number(args.actuators); replica++) {
  const port = await freePort();
  children.push(await startService('cms-actuator', { ...env, ACTUATOR_PORT: String(port) }, `http://127.0.0.1:${port}/readyz`));
}
children.push(await startService('records-api', env, `http://127.0.0.1:${ports.api}/readyz`));
const api = `http://127.0.0.1:${ports.api}/api/v1`;

async function request(method: string, urlPath: string, body?: unknown) {
  const res = await fetch(`${api}${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${operatorToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: the benchmark reads a few fields
  return { status: res.status, body: (await res.json()) as any };
}

// The control meeting: four people on cms-1, known to the records API through their CDRs.
const control = sim.startCall({ name: 'Control room', bridges: [] });
const people = ['ops1', 'ops2', 'ops3', 'ops4'].map((name) =>
  sim.join({ meeting: control, bridge: 'cms-1', remoteParty: `${name}@${INTERNAL}` }),
);
const controlCall = control.callId('cms-1');
for (const deadline = Date.now() + 60_000; ; ) {
  const res = await request('GET', `/calls/${controlCall}`);
  const known =
    res.status === 200 && res.body.node !== null && people.every((p) => res.body.legs.some((l: { id: string }) => l.id === p.callLegId));
  if (known) break;
  if (Date.now() > deadline) throw new Error('the control meeting did not reach the records API');
  await sleep(100);
}

interface ActionSample {
  acceptedToWriteMs: number;
  requestToAnswerMs: number;
  answer: number;
  /** Accepted until the node's worker took the job (operator_action_steps.started_at). */
  queuedMs: number | null;
}

/** One mute/unmute, waiting for its PUT to reach the bridge; the sample, or null when it never arrived. */
async function oneAction(i: number): Promise<ActionSample | null> {
  const leg = people[i % people.length] as (typeof people)[number];
  const since = sim.writeLog().at(-1)?.seq ?? 0;
  const sent = Date.now();
  const res = await request('PATCH', `/calls/${controlCall}/participants/${leg.callLegId}`, { rxAudioMute: i % 2 === 0 });
  const answered = Date.now();
  if (res.status !== 200 && res.status !== 202) {
    log(`action ${i}: ${res.status} ${JSON.stringify(res.body)}`);
    return null;
  }
  const acceptedAt = Date.parse(res.body.createdAt);
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(5)) {
    const put = sim
      .writeLog({ bridge: 'cms-1', method: 'PUT', urlContains: `/callLegs/${leg.callLegId}`, sinceSeq: since })
      .find((w) => w.outcome === 'applied');
    if (put) {
      const action = await request('GET', `/actions/${res.body.id}`);
      const queuedMs = action.body.steps?.[0]?.queuedMs ?? null;
      return { acceptedToWriteMs: Date.parse(put.at) - acceptedAt, requestToAnswerMs: answered - sent, answer: res.status, queuedMs };
    }
  }
  log(`action ${i}: no PUT within 30 s`);
  return null;
}

async function actions(count: number, offset: number): Promise<ActionSample[]> {
  const samples: ActionSample[] = [];
  for (let i = 0; i < count; i++) {
    const sample = await oneAction(offset + i);
    if (sample) samples.push(sample);
    await sleep(Number(args['action-interval-ms']));
  }
  return samples;
}

/** Message PUTs (security levels) cms-1 accepted per second between two times. */
function messageRate(fromMs: number, toMs: number): { perSecond: number; fullSeconds: number; seconds: number } {
  const times = sim
    .writeLog({ bridge: 'cms-1', method: 'PUT' })
    .filter((w) => w.outcome === 'applied' && w.params.messageText !== undefined)
    .map((w) => Date.parse(w.at))
    .filter((t) => t >= fromMs && t < toMs);
  const seconds = Math.max(1, Math.floor((toMs - fromMs) / 1000));
  let full = 0;
  for (let s = 0; s < seconds; s++) {
    const n = times.filter((t) => t >= fromMs + s * 1000 && t < fromMs + (s + 1) * 1000).length;
    if (n >= messageShare) full++;
  }
  return { perSecond: times.length / ((toMs - fromMs) / 1000), fullSeconds: full, seconds };
}

/**
 * cms-1's message writes ready to go but not yet started (its write queue's waiting jobs, one per call at most:
 * message jobs are deduplicated per call), every 250 ms until stopped: never 0 means the ceiling, not the demand,
 * set the pace all along. The bridge's per-second arrivals show it less well: the gate counts each write's window
 * from its answer, 1.1 s, so 9 places a window arrive as 8 or so a second.
 */
function sampleBacklog(): { stop(): Promise<number[]> } {
  const connection = createRedisConnection(redisUrl, 'producer');
  const queue = createCmsWritesQueue('cms-1', { connection, prefix: queuePrefix });
  const samples: number[] = [];
  let stopped = false;
  const sampling = (async () => {
    while (!stopped) {
      try {
        const counts = await queue.getJobCounts('wait', 'prioritized');
        samples.push((counts.wait ?? 0) + (counts.prioritized ?? 0));
      } catch {} // not connected yet
      await sleep(250);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await sampling;
      await queue.close();
      connection.disconnect();
      return samples;
    },
  };
}

/** A mute changed on the bridge (driver: no API write) until GET /calls/<id> shows it; null when it never shows. */
async function freshness(samples: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const leg = people[i % people.length] as (typeof people)[number];
    const muted = i % 4 < 2;
    const changed = Date.now();
    sim.updateCallLeg(leg.callLegId, { rxAudioMute: muted });
    let seen: number | null = null;
    for (const deadline = changed + 5000; Date.now() < deadline; await sleep(10)) {
      const res = await request('GET', `/calls/${controlCall}`);
      const live = res.body.legs?.find((l: { id: string }) => l.id === leg.callLegId)?.live;
      if (live && live.audioMuted === muted) {
        seen = Date.now() - changed;
        break;
      }
    }
    if (seen === null) {
      log(`freshness sample ${i}: not visible within 5 s`);
      if (out.length === 0 && i >= 3) return out; // the live view is not there: no point going on
    } else out.push(seen);
    await sleep(100);
  }
  return out;
}

log('idle: actions with no load');
const idleFresh = await freshness(Math.min(10, Number(args['freshness-samples'])));
const idle = await actions(Number(args['idle-actions']), 0);
const violationsBefore = sim.inspect().bridges.reduce((n, b) => n + b.counters.writeViolations, 0);

log(`load: ${args.meetings} meetings x ${args.participants} participants over ${args.window} s on 2 bridges`);
const loadRun = driveLoad(
  sim,
  {
    meetings: Number(args.meetings),
    participantsPerMeeting: Number(args.participants),
    joinWindowSeconds: Number(args.window),
    durationSeconds: Number(args.stay),
    bridgesPerMeeting: 2,
    domains: [SECURE, INTERNAL, EXTERNAL],
  },
  { seed: Number(args.seed), stopAtSeconds: Number(args.window) },
);
// Meetings on cms-1 whose level flips: a secure participant stays, an external guest joins and leaves.
const flapping = Array.from({ length: Number(args['flap-meetings']) }, (_, i) => {
  const meeting = sim.startCall({ name: `Flapping ${i}`, bridges: [] });
  sim.join({ meeting, bridge: 'cms-1', remoteParty: `host${i}@${SECURE}` });
  return { meeting, guest: null as string | null };
});
let flapStop = false;
const flapper = (async () => {
  for (let tick = 0; !flapStop; tick++) {
    for (const f of flapping) {
      if (f.guest) {
        sim.leave(f.guest);
        f.guest = null;
      } else f.guest = sim.join({ meeting: f.meeting, bridge: 'cms-1', remoteParty: `guest${tick}@${EXTERNAL}` }).callLegId;
    }
    await sleep(1000 / Number(args['flap-hz']));
  }
})();
// Until cms-1 writes messages at their whole share of its ceiling (or 20 s).
const loadStarted = Date.now();
while (Date.now() - loadStarted < 20_000) {
  await sleep(1000);
  if (messageRate(Date.now() - 2000, Date.now()).fullSeconds >= 2) break;
}
const busyFrom = Date.now();
const backlog = sampleBacklog();
const busy = await actions(Number(args.actions), 1000);
const backlogWhileActions = await backlog.stop();
const busyFresh = await freshness(Number(args['freshness-samples']));
const busyTo = Date.now();
const saturation = messageRate(busyFrom, busyTo);
flapStop = true;
await flapper;
const run = await loadRun;
const violations = sim.inspect().bridges.reduce((n, b) => n + b.counters.writeViolations, 0);
const cms1Counters = sim.inspect().bridges.find((b) => b.name === 'cms-1')?.counters;
for (const child of children) await child.stop();
await sim.stop();
await database.drop();
rmSync(dir, { recursive: true, force: true });

const fmt = (values: number[]) =>
  values.length === 0
    ? 'n/a'
    : `${percentile(values, 50).toFixed(0)} / ${percentile(values, 90).toFixed(0)} / ${percentile(values, 99).toFixed(0)} / ${Math.max(...values).toFixed(0)} ms (n=${values.length})`;
const queued = (samples: ActionSample[]) => {
  const values = samples.map((s) => s.queuedMs).filter((v): v is number => v !== null);
  return values.length ? `${percentile(values, 50).toFixed(0)} / ${percentile(values, 99).toFixed(0)} ms` : 'n/a';
};
const answers = (samples: ActionSample[]) =>
  `${samples.filter((s) => s.answer === 200).length} of ${samples.length} answered 200 (outcome), the rest 202`;
const rows: [string, string][] = [
  ['commit', version],
  ['command', commandLine('bench:control')],
  ['started', startedAt.toISOString()],
  ['machine', machineDescription()],
  ['load average at start / end', `${loadAtStart} -> ${loadAverage()}`],
  [
    'Redis / Postgres',
    `${redisUrl} (shared) / ${process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'} (shared, fresh database)`,
  ],
  [
    'bridges, maxWritesPerSecond per bridge; places kept for actions; cms-actuator replicas',
    `2, ${maxWritesPerSecond}; ${reserved}; ${args.actuators}`,
  ],
  [
    'load',
    `${args.meetings} meetings x ${args.participants} participants over ${args.window} s, 2 bridges per meeting (${run.joins} joins, ${run.leaves} leaves); ${args['flap-meetings']} meetings on cms-1 flipping level ${args['flap-hz']} times/s`,
  ],
  ['idle: action accepted -> PUT at the bridge, p50/p90/p99/max', fmt(idle.map((s) => s.acceptedToWriteMs))],
  ['idle: request -> answer', `${fmt(idle.map((s) => s.requestToAnswerMs))}; ${answers(idle)}`],
  ['saturated: action accepted -> PUT at the bridge, p50/p90/p99/max', fmt(busy.map((s) => s.acceptedToWriteMs))],
  ['idle / saturated: of which accepted -> job taken by the worker, p50/p99', `${queued(idle)} / ${queued(busy)}`],
  ['saturated: request -> answer', `${fmt(busy.map((s) => s.requestToAnswerMs))}; ${answers(busy)}`],
  [
    'cms-1 message PUTs while actions ran',
    `${saturation.perSecond.toFixed(1)}/s; ${saturation.fullSeconds} of ${saturation.seconds} seconds with the messages' whole share of the ceiling (${messageShare} PUTs: ${Math.floor(maxWritesPerSecond)} less ${reserved} kept for actions)`,
  ],
  [
    'cms-1 message writes waiting to start while actions ran (every 250 ms), min / mean / max',
    backlogWhileActions.length === 0
      ? 'n/a'
      : `${Math.min(...backlogWhileActions)} / ${(backlogWhileActions.reduce((a, b) => a + b, 0) / backlogWhileActions.length).toFixed(1)} / ${Math.max(...backlogWhileActions)} (n=${backlogWhileActions.length})`,
  ],
  [
    'ceiling violations (simulator writeViolations, all bridges, whole run)',
    `${violations} (${violations - violationsBefore} during the load)`,
  ],
  ['cms-1 API writes / 503s (fault)', `${cms1Counters?.apiWrites ?? '?'} / ${cms1Counters?.fault503 ?? '?'}`],
  [
    'live-view freshness idle, p50/p90/p99/max',
    idleFresh.length ? fmt(idleFresh) : 'not measurable (GET /calls/<id> never showed the change within 5 s)',
  ],
  [
    'live-view freshness under load, p50/p90/p99/max',
    busyFresh.length ? fmt(busyFresh) : 'not measurable (GET /calls/<id> never showed the change within 5 s)',
  ],
];
const table = ['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v.replaceAll('|', '\\|')} |`)].join('\n');
const results = path.join(import.meta.dirname, 'results', 'control.md');
if (!existsSync(results)) {
  writeFileSync(
    results,
    '# Call-control benchmark results\n\n`npm run bench:control` (bench/control.ts says how it measures). Goals: action accepted -> CMS write p99 <= 300 ms ' +
      "while the node's ceiling is saturated by message writes; 0 ceiling violations; live-view freshness (bridge change -> GET /api/v1/calls/<id>) within 1 s.\n",
  );
}
appendFileSync(results, `\n## Run ${startedAt.toISOString()}\n\n${table}\n${args.note ? `\n${args.note}\n` : ''}`);
process.stdout.write(`${table}\n`);
process.exit(0);
