import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { type BridgeInfo, type Simulator, startSimulator } from '@cms/cms-sim';
import { loadConfig } from '@cms/config';
import { callMessages } from '@cms/db';
import { type CmsWritesQueue, createCmsWritesQueue, enqueueCallMessageWrite } from '@cms/queue';
import { inArray } from 'drizzle-orm';
import type { ActuatorService } from '../../services/cms-actuator/src/app.ts';
import type { ActuatorTuning } from '../../services/cms-actuator/src/tuning.ts';
import { actuatorTestBackends, startTestActuator } from '../helpers/actuator.ts';
import { eventually } from '../helpers/infra.ts';

// How the actuator spends a node's write ceiling: changes that come together go out together when the ceiling has
// room for them, and the ceiling holds at CMS however long CMS takes to answer. Each test writes to a bridge of its
// own: the simulator judges its ceiling over the last second, which must not hold the writes of another test.
const NODES = ['cms-1', 'cms-2'];

let sim: Simulator;
const { db, databaseUrl, redisUrl, basePrefix, producer } = await actuatorTestBackends();
let run = 0;
const services: ActuatorService[] = [];
const queues: CmsWritesQueue[] = [];

async function startActuator(node: string, prefix: string, maxWritesPerSecond: number, tuning: Partial<ActuatorTuning>): Promise<void> {
  const bridge: BridgeInfo = sim.bridge(node);
  const config = loadConfig({
    env: {},
    overrides: {
      log: { level: 'silent' },
      redis: { url: redisUrl },
      database: { url: databaseUrl },
      queue: { prefix },
      cms: {
        nodes: [{ name: node, url: bridge.url, username: bridge.username, password: bridge.password, maxWritesPerSecond }],
      },
    },
  });
  services.push((await startTestActuator(config, { db, tuning })).service);
}

/** Desired messages for `count` new calls, stored first and then queued all at once (as one policy commit does). */
async function desireTogether(node: string, prefix: string, count: number): Promise<Map<string, string>> {
  const queue = createCmsWritesQueue(node, { connection: producer, prefix });
  queues.push(queue);
  const wanted = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const callId = sim.startCall({ name: `pacing ${run}.${i}`, bridge: node }).callId(node);
    const text = `Security Level ${(i % 3) + 1}`;
    wanted.set(callId, text);
    await db.insert(callMessages).values({
      callId,
      node,
      meetingKey: callId,
      level: (i % 3) + 1,
      messageText: text,
      messagePosition: 'bottom',
      messageDuration: 'permanent',
    });
  }
  await Promise.all([...wanted.keys()].map((callId) => enqueueCallMessageWrite(queue, callId)));
  return wanted;
}

async function allApplied(wanted: Map<string, string>): Promise<boolean> {
  const rows = await db
    .select()
    .from(callMessages)
    .where(inArray(callMessages.callId, [...wanted.keys()]));
  return rows.length === wanted.size && rows.every((r) => r.appliedVersion === r.version && r.status === 'applied');
}

function violations(node: string): number {
  return sim.inspect().bridges.find((b) => b.name === node)!.counters.writeViolations;
}

before(async () => {
  sim = await startSimulator({ controlPort: null, bridges: NODES.map((name) => ({ name })) });
});

afterEach(async () => {
  sim.setFaults({ latencyMs: 0, latencyJitterMs: 0, maxWritesPerSecond: null });
  for (const service of services.splice(0)) await service.close();
  for (const queue of queues.splice(0)) await queue.close();
});

after(async () => {
  await sim.stop();
});

test('changes for several calls that come together below the ceiling are written together, not spread over its second', async () => {
  // A meeting's first joins on a bridge come together. With room for 6 writes a second, one kept for operator
  // actions, 5 changes need no waiting: starting one job per 1/6 s would put the last write at least 4 x 187 ms after
  // the first.
  const CEILING = 6;
  const RESERVED_FOR_ACTIONS = 1;
  const changes = CEILING - RESERVED_FOR_ACTIONS;
  const node = 'cms-1';
  const prefix = `${basePrefix}-${++run}`;
  sim.setFaults({ maxWritesPerSecond: CEILING }, { bridge: node });
  const before = violations(node);
  const sinceSeq = sim.writeLog().at(-1)?.seq ?? 0;
  await startActuator(node, prefix, CEILING, { concurrency: CEILING, interactiveReservedWrites: RESERVED_FOR_ACTIONS });
  const wanted = await desireTogether(node, prefix, changes);

  await eventually(() => allApplied(wanted), { timeoutMs: 30_000, what: 'every message applied' });
  const arrivals = sim.writeLog({ method: 'PUT', sinceSeq, bridge: node }).map((p) => p.atMs);
  assert.equal(arrivals.length, changes, 'one write per call');
  const spreadMs = Math.max(...arrivals) - Math.min(...arrivals);
  assert.ok(spreadMs < 700, `the ${changes} writes arrived over ${spreadMs} ms`);
  assert.equal(violations(node) - before, 0, 'CMS refused no write for the ceiling');
});

test('the ceiling holds at CMS when its answers take longer than the gate allows for, with writes going out together', async () => {
  // CMS handles each request up to 900 ms after it was sent (and counts it then). Two writes sent together may be
  // handled 900 ms apart; a write sent one window (1.1 s) after them would then be handled within a second of the
  // later one. Counting each write's window from its answer keeps them apart.
  const CEILING = 2;
  const WRITES = 10;
  const node = 'cms-2';
  const prefix = `${basePrefix}-${++run}`;
  sim.setFaults({ maxWritesPerSecond: CEILING, latencyJitterMs: 900 }, { bridge: node });
  const before = violations(node);
  await startActuator(node, prefix, CEILING, { concurrency: 4 });
  const wanted = await desireTogether(node, prefix, WRITES);

  await eventually(() => allApplied(wanted), { timeoutMs: 60_000, intervalMs: 250, what: 'every message applied' });
  for (const [callId, text] of wanted) assert.equal(sim.inspectCall(callId).messageText, text);
  assert.equal(violations(node) - before, 0, 'CMS refused no write for the ceiling');
});
