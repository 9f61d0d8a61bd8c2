import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startSimulator } from '@cms/cms-sim';
import { loadConfig } from '@cms/config';
import { callLegObservations, type Database } from '@cms/db';
import { createLogger, createMetricsRegistry } from '@cms/observability';
import { createPolicyRecomputeQueue, createRedisConnection, type PolicyRecomputeJob } from '@cms/queue';
import type { Job } from 'bullmq';
import { inArray } from 'drizzle-orm';
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

let db: Database;
let redisUrl: string;
let prefix: string;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

before(async () => {
  ({ db } = await testDatabase());
  ({ url: redisUrl, prefix } = await testRedis());
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('roster changes of one meeting, each stored on its own, ask the policy worker for one recompute', async () => {
  const node = 'coalesce-a';
  const sim = await startSimulator({ controlPort: null, bridges: [{ name: node, password: PASSWORD }] });
  cleanups.push(() => sim.stop());
  const config = loadConfig({
    env: {},
    overrides: {
      log: { level: 'silent' },
      redis: { url: redisUrl },
      queue: { prefix: `${prefix}-coalesce` },
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
    eventsLimits: { reconnectBaseMs: 50, reconnectMaxMs: 200, recomputeCoalesceMs: WINDOW_MS },
  });
  cleanups.push(() => actuator.close());
  const connection = createRedisConnection(redisUrl, 'worker');
  cleanups.push(() => connection.disconnect());
  const queue = createPolicyRecomputeQueue({ connection, prefix: config.queue.prefix });
  cleanups.push(() => queue.close());
  const jobs = async (reason: string): Promise<Job<PolicyRecomputeJob>[]> =>
    (await queue.getJobs(['waiting', 'delayed', 'prioritized'])).filter((j) => j.data.reason.split(',').includes(reason));

  const meeting = sim.startCall({ bridges: [node] });
  // Each join waits for its row: every one is a rosterUpdate, a transaction and (before coalescing) a recompute.
  const participants: string[] = [];
  const callIds = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const joined = sim.join({ meeting, remoteParty: `user${i}@corp.example` });
    participants.push(joined.participantId);
    callIds.add(joined.callId);
    await eventually(
      async () =>
        (await db.select().from(callLegObservations).where(inArray(callLegObservations.participantId, participants))).length ===
        participants.length,
      { what: `participant ${i} stored from the roster` },
    );
  }

  const [job] = await eventually(
    async () => {
      const found = await jobs('events:roster');
      return found.length > 0 && found;
    },
    { what: "the meeting's recompute", timeoutMs: WINDOW_MS + 15_000 },
  );
  assert.equal((await jobs('events:roster')).length, 1, 'five roster changes, one recompute');
  assert.deepEqual(job?.data.callIds, [...callIds], "the recompute names the meeting's call");
});
