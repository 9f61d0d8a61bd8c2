/**
 * Replicas that add up: two processes each of cdr-ingest, policy-worker and cms-actuator on one Redis and one
 * Postgres, fed by two simulated Call Bridges that send every CDR to both ingest replicas (two receivers, as CMS
 * allows four) and by POSTs of the test that send each batch to both replicas at once and some again. Every
 * acknowledged record must be stored once, each call's message written once, and neither bridge may see more
 * writes in any second than its ceiling, however the two actuators share the work.
 *
 * The Redis is one of the test's own, in cluster mode with one node owning every slot: it refuses any command or
 * script whose declared keys hash to different slots (CROSSSLOT), as a Redis Cluster does. The services run with a
 * hash-tagged queue prefix (`{…}`), as docs/scaling.md says to run them on a Cluster, so passing here shows that
 * every multi-key command of BullMQ and of our own scripts stays in the prefix's slot.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Simulator, WriteLogEntry } from '@cms/cms-sim';
import { pg } from '@cms/db';
import { cmsWritesQueueName, createRedisConnection, type Redis } from '@cms/queue';
import { Queue } from 'bullmq';
import { legUpdateBatches, recordsXml } from '../helpers/cdr-xml.ts';
import { deleteRedisKeys, eventually, onTestFileEnd, testDatabase, uniqueName } from '../helpers/infra.ts';
import { freePort } from '../helpers/stack.ts';
import { bridgesWithCredentials, cmsNodesOf, startStackSimulator, writeConfigFile } from '../helpers/stack-setup.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BRIDGES = ['cms-1', 'cms-2'] as const;
/** Our config's ceiling and the simulator's: a write above it is answered 503 and counted as a violation. */
const MAX_WRITES_PER_SECOND = 4;
const SECURE = 'secure.example';
const INTERNAL = 'corp.example';
/** Meetings of the simulated load, each on one bridge, each with participants of one level only. */
const MEETINGS = 24;
const PARTICIPANTS = 3;
/** The test's own POSTs: sessions of a node no actuator writes to, each record in a batch sent at least twice. */
const POST_SESSIONS = 6;
const RECORDS_PER_SESSION = 120;
const RECORDS_PER_BATCH = 8;

type Service = 'cdr-ingest' | 'policy-worker' | 'cms-actuator';

interface Replica {
  service: Service;
  index: number;
  process: ChildProcess;
  /** Its main port (ingest: the receiver; the others: health and metrics). */
  url: string;
  metricsUrl: string;
  output: string[];
}

/** A redis-server of this file's own in cluster mode, owning all 16384 slots, so it applies Cluster's same-slot rule. */
async function startClusterModeRedis(): Promise<string> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'cms-replicas-redis-'));
  const child = spawn(
    'redis-server',
    [
      ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
      ...['--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf')],
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  onTestFileEnd(async () => {
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  const url = `redis://127.0.0.1:${port}`;
  const admin = createRedisConnection(url, 'worker');
  // Refused until the server listens: ioredis retries, and says so on 'error' (unheard, it would print each one).
  admin.on('error', () => {});
  try {
    await eventually(async () => (await admin.ping()) === 'PONG', { what: 'the cluster-mode redis-server to answer' });
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    await eventually(async () => /cluster_state:ok/.test(String(await admin.call('CLUSTER', 'INFO'))), {
      what: 'the one-node cluster to be ok',
    });
  } finally {
    admin.disconnect();
  }
  return url;
}

let redisUrl: string;
let prefix: string;
let databaseUrl: string;
let sim: Simulator;
let sql: pg.Client;
const ingestToken = 'replicas-ingest-token-0123456789';
const replicas: Replica[] = [];

async function startReplica(service: Service, index: number, env: Record<string, string>): Promise<Replica> {
  const port = await freePort();
  const metricsPort = service === 'cdr-ingest' ? await freePort() : port;
  const portEnv: Record<Service, Record<string, string>> = {
    'cdr-ingest': { INGEST_PORT: String(port), INGEST_METRICS_PORT: String(metricsPort) },
    'policy-worker': { POLICY_WORKER_PORT: String(port) },
    'cms-actuator': { ACTUATOR_PORT: String(port) },
  };
  const child = spawn(process.execPath, [`services/${service}/src/main.ts`], {
    cwd: ROOT,
    env: { ...env, ...portEnv[service] },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout?.on('data', (d) => output.push(String(d)));
  child.stderr?.on('data', (d) => output.push(String(d)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  onTestFileEnd(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const replica: Replica = {
    service,
    index,
    process: child,
    url: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    output,
  };
  replicas.push(replica);
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`${service} #${index} exited during start-up:\n${output.join('').slice(-3000)}`);
      return (await fetch(`${replica.url}/readyz`)).ok;
    },
    { what: `${service} #${index} to be ready`, timeoutMs: 45_000, intervalMs: 100 },
  );
  return replica;
}

const of = (service: Service) => replicas.filter((r) => r.service === service);

function logs(service: Service): string {
  return of(service)
    .map((r) => `--- ${service} #${r.index}\n${r.output.join('').slice(-2000)}`)
    .join('\n');
}

/** The sum of a counter's samples on one replica whose labels include every one of `labels`. */
async function metric(replica: Replica, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${replica.metricsUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name} `) || line.startsWith(`${name}{`))) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

const level = (n: number) => `Security Level ${n}`;

/** Most accepted writes the bridge received within any 1000 ms (the simulator's own sliding window). */
function busiestSecond(writes: WriteLogEntry[]): number {
  const times = writes.filter((w) => w.outcome !== 'rateLimited').map((w) => w.atMs);
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while ((times[i] as number) - (times[j] as number) >= 1000) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

before(async () => {
  redisUrl = await startClusterModeRedis();
  // Hash-tagged: every key of the deployment is in the slot of what is between the braces.
  prefix = `{${uniqueName('replicas')}}`;
  onTestFileEnd(async () => {
    await deleteRedisKeys(redisUrl, prefix);
  });
  const database = await testDatabase();
  databaseUrl = database.url;
  sql = new pg.Client({ connectionString: databaseUrl });
  await sql.connect();
  onTestFileEnd(() => sql.end());

  sim = await startStackSimulator({
    bridges: bridgesWithCredentials(BRIDGES),
    seed: 20261207,
    faults: { maxWritesPerSecond: MAX_WRITES_PER_SECOND },
  });
  const { configFile } = writeConfigFile('replicas-e2e-', {
    cms: { nodes: cmsNodesOf(sim, { maxWritesPerSecond: MAX_WRITES_PER_SECOND }) },
    policy: { secureDomains: [SECURE], internalDomains: [INTERNAL] },
  });
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    CONFIG_FILE: configFile,
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    INGEST_TOKEN: ingestToken,
    LOG_LEVEL: 'warn',
    INGEST_HOST: '127.0.0.1',
    POLICY_WORKER_HOST: '127.0.0.1',
    ACTUATOR_HOST: '127.0.0.1',
  };
  // All six at once: start-up is mostly module loading, and the machine may be busy.
  await Promise.all(
    (['cdr-ingest', 'policy-worker', 'cms-actuator'] as const).flatMap((service) => [
      startReplica(service, 1, env),
      startReplica(service, 2, env),
    ]),
  );
  // Every bridge sends every CDR to both ingest replicas: each record arrives twice, through different processes.
  sim.setCdrReceivers(of('cdr-ingest').map((r) => `${r.url}/cdr/{bridge}?token=${ingestToken}`));
});

describe('two replicas of each service on one Redis and one Postgres', () => {
  test('under a hash-tagged prefix the Redis refuses keys of two slots, so the run below is held to Cluster rules', async () => {
    const redis: Redis = createRedisConnection(redisUrl, 'worker');
    try {
      // The write gate's two keys under the default, untagged prefix land in different slots.
      await assert.rejects(
        redis.eval("return redis.call('EXISTS', KEYS[1], KEYS[2])", 2, 'cms:cms-write-gate:cms-1', 'cms:cms-write-gate:cms-1:urgent'),
        /CROSSSLOT/,
      );
      assert.equal(
        await redis.eval(
          "return redis.call('EXISTS', KEYS[1], KEYS[2])",
          2,
          `${prefix}:cms-write-gate:cms-1`,
          `${prefix}:cms-write-gate:cms-1:urgent`,
        ),
        0,
      );
    } finally {
      redis.disconnect();
    }
  });

  test('every record is stored once, every message written once, and no bridge sees more writes a second than its ceiling', async () => {
    // The simulated load: meetings started together on both bridges, so the writes they need queue at the ceiling.
    const expected = new Map<string, { bridge: string; text: string }>();
    for (let m = 0; m < MEETINGS; m++) {
      const bridge = BRIDGES[m % BRIDGES.length] as string;
      const meetingLevel = (m % 3) + 1;
      const meeting = sim.startCall({ name: `Replicas ${m}`, bridges: [] });
      let callId = '';
      for (let p = 0; p < PARTICIPANTS; p++) {
        const domain = meetingLevel === 1 ? SECURE : meetingLevel === 2 ? INTERNAL : 'elsewhere.example';
        callId = sim.join({ meeting, bridge, remoteParty: `p${p}.m${m}@${domain}` }).callId;
      }
      expected.set(callId, { bridge, text: level(meetingLevel) });
    }

    // The test's own POSTs: each batch to both ingest replicas at once, every third one once more after its answer.
    const [ingestA, ingestB] = of('cdr-ingest') as [Replica, Replica];
    const post = async (replica: Replica, body: string) => {
      const res = await fetch(`${replica.url}/cdr/loadgen?token=${ingestToken}`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'text/xml' },
      });
      await res.arrayBuffer();
      return res.status;
    };
    const acknowledged = new Set<string>();
    const statuses: number[] = [];
    const sessions = Array.from({ length: POST_SESSIONS }, () => crypto.randomUUID());
    await Promise.all(
      sessions.map(async (session) => {
        const batches = legUpdateBatches(session, RECORDS_PER_SESSION, RECORDS_PER_BATCH, { legs: 10, calls: 3 });
        for (const [i, records] of batches.entries()) {
          const body = recordsXml({ session, records });
          const answers = await Promise.all([post(ingestA, body), post(ingestB, body)]);
          if (i % 3 === 0) answers.push(await post(i % 2 ? ingestA : ingestB, body));
          statuses.push(...answers);
          if (answers.includes(200)) for (const r of records) acknowledged.add(`${session}/${r.correlatorIndex}`);
        }
      }),
    );
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'every POST is acknowledged',
    );
    assert.equal(acknowledged.size, POST_SESSIONS * RECORDS_PER_SESSION);

    // What the bridges sent (every record to both replicas, each acknowledged by each).
    await sim.waitForCdrsDelivered({ timeoutMs: 30_000 });
    for (const bridge of BRIDGES) for (const r of sim.cdrRecords(bridge)) acknowledged.add(`${r.session}/${r.correlatorIndex}`);
    const simSessions = [...new Set(BRIDGES.flatMap((b) => sim.cdrRecords(b).map((r) => r.session)))];

    // Stored once: every acknowledged record is there, and no (session, correlatorIndex) twice.
    const allSessions = [...sessions, ...simSessions];
    const stored = await eventually(
      async () => {
        const { rows } = await sql.query<{ session: string; correlator_index: string }>(
          'SELECT session, correlator_index FROM cdr_records WHERE session = ANY($1)',
          [allSessions],
        );
        return rows.length >= acknowledged.size ? rows : false;
      },
      { what: `${acknowledged.size} records stored`, timeoutMs: 30_000, intervalMs: 200 },
    ).catch((err: Error) => assert.fail(`${err.message}\n${logs('policy-worker')}`));
    const storedKeys = stored.map((r) => `${r.session}/${r.correlator_index}`);
    assert.equal(new Set(storedKeys).size, storedKeys.length, 'no record stored twice');
    assert.deepEqual(new Set(storedKeys), acknowledged, 'exactly the acknowledged records are stored');
    // The workers agree with Postgres: each record counted as newly stored by one of them only, and both worked.
    const [workerA, workerB] = of('policy-worker') as [Replica, Replica];
    const storedBy = [await metric(workerA, 'cdr_records_stored_total'), await metric(workerB, 'cdr_records_stored_total')];
    assert.equal(storedBy[0]! + storedBy[1]!, acknowledged.size, `records counted as stored by the workers: ${storedBy.join(' + ')}`);
    assert.ok(
      storedBy.every((n) => n > 0),
      `both workers stored records: ${storedBy.join(', ')}`,
    );

    // Every call shows its meeting's level...
    for (const [callId, { text }] of expected) {
      await eventually(
        () => {
          const call = sim.inspectCall(callId);
          return call.messageText === text && call.messageVisible;
        },
        { what: `call ${callId} to show "${text}"`, timeoutMs: 30_000, intervalMs: 50 },
      ).catch((err: Error) => assert.fail(`${err.message}\n${logs('cms-actuator')}`));
    }
    // ...and once the write queues are empty (nothing more to write), it was written exactly once.
    const connection = createRedisConnection(redisUrl, 'worker');
    const queues = BRIDGES.map((b) => new Queue(cmsWritesQueueName(b), { connection, prefix }));
    try {
      await eventually(
        async () => {
          for (const q of queues) {
            const c = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
            if (Object.values(c).some((n) => n > 0)) return false;
          }
          return true;
        },
        { what: 'the write queues to be empty', timeoutMs: 30_000, intervalMs: 100 },
      );
    } finally {
      await Promise.all(queues.map((q) => q.close()));
      connection.disconnect();
    }
    for (const [callId, { bridge, text }] of expected) {
      const texts = sim
        .writeLog({ bridge, method: 'PUT', urlContains: `/calls/${callId}` })
        .filter((w) => w.outcome === 'applied' && w.params.messageText !== undefined)
        .map((w) => w.params.messageText);
      assert.deepEqual(texts, [text], `call ${callId} on ${bridge}: the message written once`);
    }

    // The ceiling held across both actuators, each of which wrote to each bridge.
    for (const bridge of BRIDGES) {
      const writes = sim.writeLog({ bridge });
      const counters = sim.inspect().bridges.find((b) => b.name === bridge)?.counters;
      assert.equal(counters?.writeViolations, 0, `${bridge}: writes refused for going over the ceiling`);
      assert.ok(busiestSecond(writes) <= MAX_WRITES_PER_SECOND, `${bridge}: ${busiestSecond(writes)} writes in one second`);
      const appliedBy = await Promise.all(
        of('cms-actuator').map((r) => metric(r, 'cms_writes_total', { node: bridge, outcome: 'applied' })),
      );
      assert.ok(
        appliedBy.every((n) => n > 0),
        `${bridge}: both actuators wrote to it (${appliedBy.join(', ')})`,
      );
    }
  });

  test('one actuator follows the events feed of each bridge; killed (kill -9), the other takes the bridge over', async () => {
    type NodeView = { mode: string; followsFeed: boolean; feedReplica: string | null };
    const nodeView = async (r: Replica, bridge: string) =>
      ((await (await fetch(`${r.url}/readyz`)).json()) as { cmsNodes: Record<string, NodeView> }).cmsNodes[bridge];
    const actuators = of('cms-actuator');
    const bridge = BRIDGES[0];
    // The lease's key is under the hash-tagged prefix: this Redis would refuse it in another slot (CROSSSLOT).
    const holder = await eventually(
      async () => {
        const views = await Promise.all(actuators.map((r) => nodeView(r, bridge)));
        const holders = actuators.filter((_, i) => views[i]?.followsFeed);
        return holders.length === 1 && views.every((v) => v?.mode === 'events') && holders[0];
      },
      { what: `one actuator following ${bridge}`, timeoutMs: 30_000, intervalMs: 100 },
    );
    const other = actuators.find((r) => r !== holder) as Replica;
    const stats = () => sim.eventsStats(bridge)[0];
    assert.equal(stats()?.connections.length, 1, `${bridge}: one events connection for two actuators`);
    assert.equal(stats()?.acceptedConnections, 1, `${bridge}: the other actuator never opened one`);

    holder.process.kill('SIGKILL');
    // The lease (5 s) expires unreleased; the other actuator, asking every second, takes it and opens its own feed.
    await eventually(
      async () => {
        const view = await nodeView(other, bridge);
        return view?.followsFeed === true && view.mode === 'events' && stats()?.connections.length === 1;
      },
      { what: `the other actuator following ${bridge}`, timeoutMs: 30_000, intervalMs: 100 },
    ).catch((err: Error) => assert.fail(`${err.message}\n${logs('cms-actuator')}`));
    assert.equal(stats()?.acceptedConnections, 2);
    const { rows } = await sql.query<{ mode: string }>('SELECT mode FROM cms_node_status WHERE node = $1', [bridge]);
    assert.equal(rows[0]?.mode, 'events');
  });
});
