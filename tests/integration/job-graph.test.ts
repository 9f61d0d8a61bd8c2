/**
 * libs/queue's job graph: every job added through a queue's factory and add helper is stored in Redis with its
 * queue's retry and removal options (set once as the queue's defaultJobOptions) and its per-job deduplication.
 * The consumers rely on these (attempts before a CMS write is dead-lettered, CDR batches kept when they fail).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parseCdrBatch } from '@cms/cdr';
import {
  addCdrBatches,
  CMS_WRITE_ATTEMPTS,
  CMS_WRITE_BACKOFF_TYPE,
  callMessageDeduplicationId,
  cappedExponentialDelay,
  cdrBatchBackoff,
  createCdrBatchesQueue,
  createCmsReconcileQueue,
  createCmsWritesQueue,
  createPolicyRecomputeQueue,
  createRedisConnection,
  enqueueCallMessageWrite,
  type Redis,
  requestRecompute,
  requestReconcile,
} from '@cms/queue';
import type { Job, Queue } from 'bullmq';
import { testRedis } from '../helpers/infra.ts';

let connection: Redis;
let prefix: string;
const queues: Queue[] = [];

before(async () => {
  const redis = await testRedis();
  prefix = redis.prefix;
  connection = createRedisConnection(redis.url, 'producer', { enableOfflineQueue: true });
});

after(async () => {
  await Promise.all(queues.map((q) => q.close()));
  connection.disconnect();
});

function track<Q extends Queue>(queue: Q): Q {
  queues.push(queue);
  return queue;
}

/** The job as stored in Redis (not the object add() returned), so the test sees what a consumer will see. */
async function stored(queue: Queue, id: string | null | undefined): Promise<Job> {
  assert.ok(id, 'the job has an id');
  const job = await queue.getJob(id);
  assert.ok(job, `job ${id} is in Redis`);
  return job;
}

const batch = parseCdrBatch('<?xml version="1.0"?><records session="s-job-graph" callBridge="cb1"></records>');

test('cdr-batches: retried about a day with the capped back-off, kept when they fail for good', async () => {
  const queue = track(createCdrBatchesQueue({ connection, prefix }));
  const added = await addCdrBatches(queue, [{ node: 'cms1', receivedAt: new Date().toISOString(), batch }]);
  const job = await stored(queue, added.id);
  assert.equal(job.opts.attempts, 1500);
  assert.deepEqual(job.opts.backoff, { type: 'capped' });
  assert.equal(job.opts.removeOnComplete, true);
  assert.equal(job.opts.removeOnFail, false);
  assert.equal(job.data.batches[0].batch.session, 's-job-graph');
});

test('cms-writes-<node>: the cmsWrite back-off, dead-lettered jobs kept a week, one waiting job per call', async () => {
  const queue = track(createCmsWritesQueue('cms-job-graph', { connection, prefix }));
  assert.equal(queue.name, 'cms-writes-cms-job-graph');
  await enqueueCallMessageWrite(queue, 'call-1');
  await enqueueCallMessageWrite(queue, 'call-1');
  assert.equal(await queue.count(), 1, 'the second change of the call joined the waiting job');
  const job = await stored(queue, await queue.getDeduplicationJobId(callMessageDeduplicationId('call-1')));
  assert.deepEqual(job.data, { kind: 'callMessage', callId: 'call-1' });
  assert.equal(job.opts.attempts, CMS_WRITE_ATTEMPTS);
  assert.deepEqual(job.opts.backoff, { type: CMS_WRITE_BACKOFF_TYPE });
  assert.equal(job.opts.removeOnComplete, true);
  assert.deepEqual(job.opts.removeOnFail, { age: 7 * 24 * 3600, count: 10_000 });
  assert.equal(job.opts.deduplication?.keepLastIfActive, true);
});

test('cms-reconcile: retried a few times; requests for a node and reason collapse, start-up ones for a while', async () => {
  const queue = track(createCmsReconcileQueue({ connection, prefix }));
  await requestReconcile(queue, 'cms1', 'cdrGap');
  await requestReconcile(queue, 'cms1', 'cdrGap');
  await requestReconcile(queue, 'cms1', 'startup');
  await requestReconcile(queue, 'cms1', 'startup');
  assert.equal(await queue.count(), 2);
  const gap = await stored(queue, await queue.getDeduplicationJobId('reconcile-cdrGap-cms1'));
  assert.equal(gap.opts.attempts, 5);
  assert.deepEqual(gap.opts.backoff, { type: 'exponential', delay: 5000 });
  assert.equal(gap.opts.removeOnComplete, true);
  assert.equal(gap.opts.removeOnFail, 100);
  assert.equal(gap.opts.deduplication?.keepLastIfActive, true);
  const startup = await stored(queue, await queue.getDeduplicationJobId('reconcile-startup-cms1'));
  assert.equal(startup.opts.attempts, 5);
  assert.equal(startup.opts.deduplication?.ttl, 10_000);
});

test('policy-recompute: retried with back-off, a thousand failures kept', async () => {
  const queue = track(createPolicyRecomputeQueue({ connection, prefix }));
  await requestRecompute(queue, ['call-a', 'call-b'], 'placement');
  const [waiting] = await queue.getWaiting();
  const job = await stored(queue, waiting?.id);
  assert.deepEqual(job.data, { callIds: ['call-a', 'call-b'], reason: 'placement' });
  assert.equal(job.opts.attempts, 10);
  assert.deepEqual(job.opts.backoff, { type: 'exponential', delay: 1000 });
  assert.equal(job.opts.removeOnComplete, true);
  assert.equal(job.opts.removeOnFail, 1000);
});

test('the one back-off formula: doubling from the base up to the cap, jittered over the upper half', () => {
  for (let attempt = 1; attempt <= 12; attempt++) {
    const ceiling = Math.min(100 * 2 ** (attempt - 1), 5000);
    for (let i = 0; i < 50; i++) {
      const delay = cappedExponentialDelay(attempt, 100, 5000);
      assert.ok(delay >= ceiling / 2 && delay <= ceiling, `attempt ${attempt}: ${delay} ms within [${ceiling / 2}, ${ceiling}]`);
    }
  }
  for (let i = 0; i < 50; i++) {
    const delay = cdrBatchBackoff(30);
    assert.ok(delay >= 30_000 && delay <= 60_000, `CDR batches back off at most a minute (${delay} ms)`);
  }
});
