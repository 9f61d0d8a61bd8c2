import assert from 'node:assert/strict';
import { afterEach, before, test } from 'node:test';
import { startSimulator } from '@cms/cms-sim';
import { loadConfig } from '@cms/config';
import { callLegObservations, cmsNodeStatus, type Database } from '@cms/db';
import { createLogger, createMetricsRegistry } from '@cms/observability';
import { createPolicyRecomputeQueue, createRedisConnection, type PolicyRecomputeJob } from '@cms/queue';
import type { Job } from 'bullmq';
import { eq, inArray } from 'drizzle-orm';
import { buildActuator } from '../../services/cms-actuator/src/app.ts';
import { eventually, testDatabase, testRedis } from '../helpers/infra.ts';

/**
 * The events feed asks the policy worker for one recompute per meeting and window, not one per roster change
 * (services/cms-actuator/src/events/recompute-coalescer.ts): each recompute is a transaction holding the meeting's
 * lock, and one per change held the meeting's CDR decisions back (bench:policy). No policy worker runs here, so the
 * requests stay in the policy-recompute queue to be counted.
 */

const PASSWORD = 'coalescing-test-pass';
const silent = createLogger('events-recompute-coalescing-test', 'silent');
/** Long enough that every join below falls in the meeting's first window. */
const WINDOW_MS = 8000;
let rigs = 0;

let db: Database;
let redisUrl: string;
let prefix: string;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

before(async () => {
  ({ db } = await testDatabase());
  ({ url: redisUrl, prefix } = await testRedis());
});

afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups.length = 0;
});

async function rig(windowMs: number) {
  const node = `coalesce-${++rigs}`;
  const sim = await startSimulator({ controlPort: null, seed: rigs * 7919, bridges: [{ name: node, password: PASSWORD }] });
  cleanups.push(() => sim.stop());
  const config = loadConfig({
    env: {},
    overrides: {
      log: { level: 'silent' },
      redis: { url: redisUrl },
      queue: { prefix: `${prefix}-${node}` },
      actuator: { reconcileIntervalSeconds: 0, readsPerSecond: 200 },
      policy: { internalDomains: ['corp.example'] },
      cms: { nodes: [{ name: node, url: sim.bridge(node).url, username: 'admin', password: PASSWORD }] },
    },
  });
  const actuator = await buildActuator({
    config,
    db,
    registry: createMetricsRegistry('cms-actuator'),
    log: silent,
    eventsLimits: { reconnectBaseMs: 50, reconnectMaxMs: 200, recomputeCoalesceMs: windowMs },
  });
  cleanups.push(() => actuator.close());
  const connection = createRedisConnection(redisUrl, 'worker');
  cleanups.push(() => connection.disconnect());
  const queue = createPolicyRecomputeQueue({ connection, prefix: config.queue.prefix });
  cleanups.push(() => queue.close());
  /** The recompute requests queued for this reason (no policy worker takes them). */
  const jobs = async (reason: string): Promise<Job<PolicyRecomputeJob>[]> =>
    (await queue.getJobs(['waiting', 'delayed', 'prioritized'])).filter((j) => j.data.reason.split(',').includes(reason));
  // The feed follows the bridge before the meeting starts (as in cms-events-feed.test.ts).
  await eventually(async () => (await db.select().from(cmsNodeStatus).where(eq(cmsNodeStatus.node, node)))[0]?.mode === 'events', {
    what: `${node} in events mode`,
  });
  const meeting = sim.startCall({ bridges: [node] });
  /** Participants joined one after another, each stored from its own rosterUpdate before the next joins. */
  const joinEach = async (count: number) => {
    const joined: { participantId: string; callLegId: string; callId: string }[] = [];
    for (let i = 0; i < count; i++) {
      joined.push(sim.join({ meeting, remoteParty: `user${i}@corp.example` }));
      const ids = joined.map((j) => j.participantId);
      await eventually(
        async () =>
          (await db.select().from(callLegObservations).where(inArray(callLegObservations.participantId, ids))).length === ids.length,
        { what: `participant ${i} stored from the roster` },
      );
    }
    return joined;
  };
  return { sim, jobs, joinEach };
}

test('roster changes of one meeting, each stored on its own, ask the policy worker for one recompute', async () => {
  const r = await rig(WINDOW_MS);
  const joined = await r.joinEach(5);
  // No CDR names them: once the policy's grace is over they count (and the recompute after it is asked for).
  await eventually(async () => (await r.jobs('events:rosterOnly')).length > 0, { what: 'the grace over', timeoutMs: 20_000 });
  // Each leave is a rosterUpdate, a transaction and (one recompute per change) a recompute of its own.
  for (const [i, p] of joined.entries()) {
    r.sim.leave(p.callLegId);
    await eventually(
      async () => (await db.select().from(callLegObservations).where(eq(callLegObservations.participantId, p.participantId))).length === 0,
      { what: `participant ${i} gone from the roster` },
    );
  }
  const [job] = await eventually(
    async () => {
      const found = await r.jobs('events:roster');
      return found.length > 0 && found;
    },
    { what: "the meeting's recompute", timeoutMs: WINDOW_MS + 15_000 },
  );
  assert.equal((await r.jobs('events:roster')).length, 1, 'five roster changes, one recompute');
  assert.deepEqual(job?.data.callIds, [...new Set(joined.map((p) => p.callId))], "the recompute names the meeting's call");
  // ... and whose live view changed, so that the policy worker reads only their legs.
  for (const p of joined) assert.ok(job?.data.participants?.includes(p.participantId), `participant ${p.participantId} named`);
});

test('participants only the roster shows, joining or leaving within the policy grace, ask for no recompute until the grace is over', async () => {
  const r = await rig(1);
  const joined = await r.joinEach(3);
  // One leaves again within the grace: the policy never counted it, so its leave changes nothing either.
  const first = joined[0] as (typeof joined)[number];
  r.sim.leave(first.callLegId);
  await eventually(
    async () =>
      (await db.select().from(callLegObservations).where(eq(callLegObservations.participantId, first.participantId))).length === 0,
    { what: 'the first participant gone from the roster' },
  );
  // No CDR names them: after the grace they count, and the recompute then is due (and is asked for).
  const [later] = await eventually(
    async () => {
      const found = await r.jobs('events:rosterOnly');
      return found.length > 0 && found;
    },
    { what: 'the recompute after the grace', timeoutMs: 20_000 },
  );
  assert.deepEqual(later?.data.callIds, [...new Set(joined.map((p) => p.callId))]);
  assert.deepEqual(later?.data.participants, joined.map((p) => p.participantId).sort(), 'the participants past the grace are named');
  // Their joins and the leave changed nothing the policy counts yet: no recompute at once (the window is 1 ms).
  assert.deepEqual(await r.jobs('events:roster'), []);
});
