/**
 * The actuator's interactive lane (services/cms-actuator/src/actions/interactive-lane.ts): an operator action is
 * taken from the node's write queue while the node's BullMQ limiter has no start left in its window (message jobs
 * used them all), and it is still held by a 503 pause. The records API and the cms-actuator run in process on real
 * Postgres and Redis; the simulated bridge is CMS. The ceiling itself is held by the write gate
 * (request-gate*.test.ts, cms-actuator-pacing.test.ts).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { createLogger } from '@cms/observability';
import { cmsWritesQueueName, createCmsWritesQueue, createRedisConnection, operatorActionsChannel, redisReady } from '@cms/queue';
import { buildActuator } from '../../services/cms-actuator/src/app.ts';
import { eventually, onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';
import { bearer, insertCallLegs, insertCalls, operatorActionsConfig, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';

// One bridge per test: a test that fills the limiter's window leaves its node's worker asleep until it would turn.
const NODES = ['cms-1', 'cms-2', 'cms-3'] as const;
type Node = (typeof NODES)[number];
const { url, db } = await testDatabase();
const redis = await testRedis();
const sim: Simulator = await startSimulator({
  bridges: NODES.map((name, i) => ({ name, username: 'admin', password: `lane-secret-${i + 1}` })),
  seed: 20261207,
  controlPort: null,
});
onTestFileEnd(() => sim.stop());
const config = operatorActionsConfig({
  databaseUrl: url,
  redis,
  bridges: sim.bridges,
  node: () => ({ maxWritesPerSecond: 10 }),
});
const actuator = await buildActuator({ config, db, log: createLogger('interactive-lane-test', 'silent') });
after(() => actuator.close());
const api = await startRecordsApi(db, { config });
const control = createRedisConnection(redis.url, 'producer');
onTestFileEnd(() => control.disconnect());
// A producer connection refuses commands until it is connected (no offline queue).
await redisReady(control, 10_000);
/** BullMQ's limiter counter of a node's write queue: job starts in the current window, shared by every worker. */
const limiterKey = (node: Node) => `${redis.prefix}:${cmsWritesQueueName(node)}:limiter`;

async function connectedLeg(name: string, node: Node) {
  const handle = sim.startCall({ name, bridges: [] });
  const leg = sim.join({ meeting: handle, bridge: node, remoteParty: `${name.toLowerCase()}@corp.example` });
  await insertCalls(db, [{ id: leg.callId, node, callCorrelator: handle.callCorrelator, startedAt: new Date().toISOString() }]);
  await insertCallLegs(db, [{ id: leg.callLegId, callId: leg.callId, node, remoteParty: `${name}@corp.example`, state: 'connected' }]);
  return { ...leg, node };
}

async function mute(leg: { callId: string; callLegId: string }) {
  const res = await api.inject({
    method: 'PATCH',
    url: `/api/v1/calls/${leg.callId}/participants/${leg.callLegId}`,
    headers: bearer(TOKENS.operator),
    payload: { rxAudioMute: true },
  });
  assert.ok([200, 202].includes(res.statusCode), res.body);
}

function legPuts(leg: { callLegId: string; node: Node }) {
  return sim.writeLog({ method: 'PUT', bridge: leg.node, urlContains: `/callLegs/${leg.callLegId}` });
}

test('an action is taken while message jobs have used every start of the limiter window', async () => {
  const leg = await connectedLeg('Busy', 'cms-1');
  // Every start of a long window used (far more than the node worker's 2N and any fixed extra): without a lane of its
  // own the action would wait the whole minute for the window to turn.
  await control.set(limiterKey(leg.node), 1_000, 'PX', 60_000);
  try {
    await mute(leg);
    await eventually(() => legPuts(leg).length === 1, { timeoutMs: 15_000, what: 'the mute written to the bridge' });
    assert.equal(sim.inspectCall(leg.callId).legs.find((l) => l.id === leg.callLegId)?.rxAudioMute, true);
  } finally {
    await control.del(limiterKey(leg.node));
  }
});

test("a 503 pause holds the lane too: the action is written once CMS's pause is over", async () => {
  const leg = await connectedLeg('Paused', 'cms-2');
  // What worker.rateLimit does when CMS answers 503: the limiter key at its maximum until the pause ends.
  const pauseMs = 1_500;
  const pauseEnds = Date.now() + pauseMs;
  await control.set(limiterKey(leg.node), Number.MAX_SAFE_INTEGER, 'PX', pauseMs);
  await mute(leg);
  await eventually(() => legPuts(leg).length === 1, { timeoutMs: 15_000, what: 'the mute written to the bridge' });
  const [put] = legPuts(leg);
  assert.ok(put && put.atMs >= pauseEnds - 5, `written ${pauseEnds - (put?.atMs ?? 0)} ms before the pause ended`);
});

test('a message write at the head of the queue is given back to the node worker, not run by the lane', async () => {
  const node: Node = 'cms-3';
  const queue = createCmsWritesQueue(node, { connection: control, prefix: redis.prefix });
  onTestFileEnd(() => queue.close());
  // The node's worker can take nothing (its window is full), so only the lane can move the job.
  await control.set(limiterKey(node), 1_000, 'PX', 60_000);
  try {
    const job = await queue.add('callMessage', { kind: 'callMessage', callId: 'no-such-call' }, { lifo: true });
    // What an action's announcement looks like when the node's worker took the action first: the lane wakes and
    // finds a message write at the head.
    await control.publish(operatorActionsChannel(redis.prefix, cmsWritesQueueName(node)), 'updateCallLeg');
    const given = await eventually(
      async () => {
        const fresh = await queue.getJob(job.id as string);
        return fresh?.processedOn !== undefined && (await fresh.getState()) === 'waiting' && fresh;
      },
      { timeoutMs: 10_000, what: 'the lane to take the message job and give it back' },
    );
    assert.equal((await queue.getWaiting(0, 0))[0]?.id, given.id, 'back at the head, next for the node worker');
  } finally {
    await control.del(limiterKey(node));
  }
});
