import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { parseCdrBatch } from '@cms/cdr';
import { loadConfig } from '@cms/config';
import { callLegObservations, callLegs, callMessages, calls, type Database, meetingLevelChanges, meetings } from '@cms/db';
import { createLogger } from '@cms/observability';
import {
  addCdrBatches,
  type CdrBatchesQueue,
  CMS_RECONCILE_QUEUE,
  type CmsReconcileJob,
  type CmsWriteJob,
  cmsWritesQueueName,
  createCdrBatchesQueue,
  createRedisConnection,
  POLICY_RECOMPUTE_QUEUE,
  type PolicyRecomputeJob,
} from '@cms/queue';
import { Queue } from 'bullmq';
import { asc, eq } from 'drizzle-orm';
import { buildPolicyWorker } from '../../services/policy-worker/src/app.ts';
import { callStart, participantAdmitted, participantJoin, participantLeaves, recordsXml, type TestRecord } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';

const node = (name: string) => ({ name, url: `https://${name}.example.com:445`, username: 'api', password: 'secret' });

let db: Database;
let cdrQueue: CdrBatchesQueue;
let prefix: string;
let redisUrl: string;

before(async () => {
  const database = await testDatabase();
  const redis = await testRedis();
  db = database.db;
  prefix = redis.prefix;
  redisUrl = redis.url;
  const config = loadConfig({
    env: {},
    overrides: {
      redis: { url: redis.url },
      queue: { prefix: redis.prefix },
      database: { url: database.url },
      cms: { nodes: [node('cms1'), node('cms2')] },
      policy: { secureDomains: ['secure.example'], internalDomains: ['corp.example'] },
    },
  });
  const service = await buildPolicyWorker({ config, log: createLogger('policy-worker', 'silent') });
  const connection = createRedisConnection(redis.url, 'producer');
  cdrQueue = createCdrBatchesQueue({ connection, prefix: redis.prefix });
  onTestFileEnd(async () => {
    await service.close();
    await cdrQueue.close();
    connection.disconnect();
  });
});

/** One Call Bridge session sending records to its node, one POST per call of `send`. */
function bridge(name: string) {
  const session = randomUUID();
  let index = 0;
  return {
    name,
    next: (n = 1) => {
      const i = index;
      index += n;
      return i;
    },
    session,
    async send(records: TestRecord[]) {
      const batch = parseCdrBatch(recordsXml({ session, records }));
      await addCdrBatches(cdrQueue, [{ node: name, receivedAt: new Date().toISOString(), batch }]);
    },
  };
}

async function levelOf(key: string): Promise<number | null | undefined> {
  const [row] = await db.select().from(meetings).where(eq(meetings.meetingKey, key));
  return row?.level;
}

async function waitForLevel(key: string, level: number | null): Promise<void> {
  await eventually(async () => (await levelOf(key)) === level, { what: `meeting level ${level}` });
}

async function history(key: string) {
  return db.select().from(meetingLevelChanges).where(eq(meetingLevelChanges.meetingKey, key)).orderBy(asc(meetingLevelChanges.id));
}

async function message(callId: string) {
  const [row] = await db.select().from(callMessages).where(eq(callMessages.callId, callId));
  return row;
}

describe('meeting security levels in the policy worker', () => {
  test('a mixed meeting moves 1 -> 2 -> 3 -> 2 -> 1 as people come and go, with a desired message at each step', async () => {
    const cms1 = bridge('cms1');
    const call = randomUUID();
    const key = randomUUID();
    await cms1.send([callStart(cms1.next(), call, key)]);
    const secure = participantJoin(cms1.next(2), { call, remoteParty: 'alice@secure.example' });
    await cms1.send(secure.records);
    await waitForLevel(key, 1);
    assert.equal((await message(call))?.messageText, 'Security Level 1');
    const internal = participantJoin(cms1.next(2), { call, remoteParty: 'sip:bob@video.corp.example:5061;transport=tls' });
    await cms1.send(internal.records);
    await waitForLevel(key, 2);
    const guest = participantJoin(cms1.next(2), { call, remoteParty: 'guest', type: 'acano', subType: 'webApp', guest: true });
    await cms1.send(guest.records);
    await waitForLevel(key, 3);
    assert.equal((await message(call))?.messageText, 'Security Level 3');
    await cms1.send([participantLeaves(cms1.next(), guest.leg)]);
    await waitForLevel(key, 2);
    await cms1.send([participantLeaves(cms1.next(), internal.leg)]);
    await waitForLevel(key, 1);
    const changes = await history(key);
    assert.deepEqual(
      changes.map((c) => [c.oldLevel, c.newLevel]),
      [
        [null, 1],
        [1, 2],
        [2, 3],
        [3, 2],
        [2, 1],
      ],
    );
    assert.equal(changes[2]?.causeLegId, guest.leg, 'the guest joining caused the change to 3');
    assert.equal((changes[2]?.reason as { rule?: string })?.rule, 'guest');
    assert.equal(changes[3]?.causeLegId, guest.leg, 'the guest leaving caused the change back to 2');
    const final = await message(call);
    assert.equal(final?.messageText, 'Security Level 1');
    assert.equal(final?.version, 5);
  });

  test('clears the message when the last participant leaves', async () => {
    const cms1 = bridge('cms1');
    const call = randomUUID();
    const key = randomUUID();
    const p = participantJoin(cms1.next(2), { call, remoteParty: 'a@corp.example' });
    await cms1.send([callStart(cms1.next(), call, key), ...p.records]);
    await waitForLevel(key, 2);
    await cms1.send([participantLeaves(cms1.next(), p.leg)]);
    await waitForLevel(key, null);
    const cleared = await message(call);
    assert.equal(cleared?.messageText, '');
    assert.equal(cleared?.messageDuration, '0');
  });

  test('a meeting across two bridges gets the message on both instances, each queued for its own bridge', async () => {
    const cms1 = bridge('cms1');
    const cms2 = bridge('cms2');
    const key = randomUUID();
    const [call1, call2] = [randomUUID(), randomUUID()];
    await cms1.send([callStart(cms1.next(), call1, key)]);
    await cms2.send([callStart(cms2.next(), call2, key)]);
    await cms1.send(participantJoin(cms1.next(2), { call: call1, remoteParty: 'a@secure.example' }).records);
    await cms2.send(participantJoin(cms2.next(2), { call: call2, remoteParty: 'b@elsewhere.example' }).records);
    await waitForLevel(key, 3);
    await eventually(
      async () => (await message(call1))?.messageText === 'Security Level 3' && (await message(call2))?.messageText === 'Security Level 3',
      {
        what: 'level 3 desired on both instances',
      },
    );
    assert.equal((await message(call1))?.node, 'cms1');
    assert.equal((await message(call2))?.node, 'cms2');
    for (const [name, call] of [
      ['cms1', call1],
      ['cms2', call2],
    ] as const) {
      const connection = createRedisConnection(redisUrl, 'producer');
      const queue = new Queue<CmsWriteJob>(cmsWritesQueueName(name), { connection, prefix });
      const jobs = await queue.getJobs(['waiting', 'delayed']);
      assert.ok(
        jobs.some((j) => j.data.kind === 'callMessage' && j.data.callId === call),
        `a write for ${call} is queued on ${name}`,
      );
      await queue.close();
      connection.disconnect();
    }
  });

  test('a participant in the lobby does not count until admitted', async () => {
    const cms1 = bridge('cms1');
    const call = randomUUID();
    const key = randomUUID();
    await cms1.send([
      callStart(cms1.next(), call, key),
      ...participantJoin(cms1.next(2), { call, remoteParty: 'host@secure.example' }).records,
    ]);
    await waitForLevel(key, 1);
    const waiting = participantJoin(cms1.next(2), { call, remoteParty: 'visitor@outside.example', lobby: true });
    await cms1.send(waiting.records);
    // The leg's projection and the level decision commit in one transaction: once the leg is stored as waiting
    // in the lobby, the level reflects it.
    await eventually(async () => (await db.select().from(callLegs).where(eq(callLegs.id, waiting.leg)))[0]?.deactivated === true, {
      what: 'the lobby leg stored',
    });
    assert.equal(await levelOf(key), 1, 'the lobby participant does not count');
    await cms1.send([participantAdmitted(cms1.next(), waiting.leg, call)]);
    await waitForLevel(key, 3);
  });

  test('records out of order and duplicated give the same level', async () => {
    const cms1 = bridge('cms1');
    const call = randomUUID();
    const key = randomUUID();
    const a = participantJoin(cms1.next(2), { call, remoteParty: 'a@secure.example' });
    const b = participantJoin(cms1.next(2), { call, remoteParty: 'b@corp.example' });
    const start = callStart(cms1.next(), call, key);
    const bLeaves = participantLeaves(cms1.next(), b.leg);
    // The leave first, then the call start, joins duplicated.
    await cms1.send([bLeaves]);
    await cms1.send([start, ...b.records]);
    await cms1.send([...a.records, ...b.records]);
    await cms1.send([start, bLeaves, ...a.records]);
    await waitForLevel(key, 1);
  });

  test("a participant connected before the callStart (Cisco's order) is decided under the call, then moves to its meeting", async () => {
    const cms1 = bridge('cms1');
    const call = randomUUID();
    const key = randomUUID();
    const p = participantJoin(cms1.next(2), { call, remoteParty: 'a@corp.example' });
    await cms1.send(p.records);
    await waitForLevel(call, 2);
    await cms1.send([callStart(cms1.next(), call, key)]);
    await waitForLevel(key, 2);
    assert.equal(await levelOf(call), undefined, 'the provisional meeting is gone');
    assert.deepEqual(
      (await history(key)).map((c) => [c.oldLevel, c.newLevel]),
      [[null, 2]],
      'the history moved with it, and the level did not change again',
    );
    assert.equal((await message(call))?.meetingKey, key);
  });

  test('look-alike domains are level 3', async () => {
    const cms1 = bridge('cms1');
    const call = randomUUID();
    const key = randomUUID();
    await cms1.send([
      callStart(cms1.next(), call, key),
      ...participantJoin(cms1.next(2), { call, remoteParty: 'a@secure.example' }).records,
    ]);
    await waitForLevel(key, 1);
    await cms1.send(participantJoin(cms1.next(2), { call, remoteParty: 'eve@secure.example.attacker.net' }).records);
    await waitForLevel(key, 3);
    const [, change] = await history(key);
    assert.equal((change?.reason as { rule?: string })?.rule, 'unlistedDomain');
  });

  test('calls on a node without API credentials get a desired state but no write', async () => {
    const other = bridge('cms9');
    const call = randomUUID();
    const key = randomUUID();
    await other.send([
      callStart(other.next(), call, key),
      ...participantJoin(other.next(2), { call, remoteParty: 'a@secure.example' }).records,
    ]);
    await waitForLevel(key, 1);
    assert.equal((await message(call))?.status, 'unmanaged');
  });
});

describe('reconciliation hooks in the policy worker', () => {
  async function reconcileRequests(): Promise<CmsReconcileJob[]> {
    const connection = createRedisConnection(redisUrl, 'producer');
    const queue = new Queue<CmsReconcileJob>(CMS_RECONCILE_QUEUE, { connection, prefix });
    const jobs = await queue.getJobs(['waiting', 'delayed', 'completed']);
    await queue.close();
    connection.disconnect();
    return jobs.map((j) => j.data);
  }

  test('a new Call Bridge session (a restart) and a CDR gap each ask for reconciliation of that node', async () => {
    const cms2 = bridge('cms2');
    await cms2.send([callStart(cms2.next(), randomUUID(), randomUUID())]);
    await eventually(async () => (await reconcileRequests()).some((j) => j.node === 'cms2' && j.reason === 'bridgeRestart'), {
      what: 'a reconcile request for the new session',
    });
    // The gap comes from a session the worker has already seen, so the only request it can prompt is the gap's own
    // (a new session would ask for `bridgeRestart` and hide a missing `cdrGap` request).
    const cms1 = bridge('cms1');
    const first = randomUUID();
    await cms1.send([callStart(cms1.next(), first, randomUUID())]);
    await eventually(async () => (await db.select().from(calls).where(eq(calls.id, first))).length === 1, {
      what: 'the first record of the session stored',
    });
    assert.ok(!(await reconcileRequests()).some((j) => j.reason === 'cdrGap'), 'no gap has been reported yet');
    const gapped: TestRecord = {
      ...callStart(cms1.next(), randomUUID(), randomUUID()),
      extraAttributes: ' numPreceedingRecordsMissing="7"',
    };
    await cms1.send([gapped]);
    await eventually(async () => (await reconcileRequests()).some((j) => j.node === 'cms1' && j.reason === 'cdrGap'), {
      what: 'a cdrGap reconcile request for cms1',
    });
  });

  test('a meeting known only from the CMS API (observed legs) gets its level and desired message on request', async () => {
    const call = randomUUID();
    const key = randomUUID();
    // What the actuator's reconciliation stores: the call and the legs CMS listed.
    await db.insert(calls).values({ id: call, node: 'cms1', callCorrelator: key, name: 'Started before us' });
    await db.insert(callLegObservations).values([
      {
        id: randomUUID(),
        callId: call,
        node: 'cms1',
        remoteParty: 'a@secure.example',
        type: 'sip',
        state: 'connected',
        deactivated: false,
      },
      { id: randomUUID(), callId: call, node: 'cms1', remoteParty: 'b@corp.example', type: 'sip', state: 'connected', deactivated: false },
      {
        id: randomUUID(),
        callId: call,
        node: 'cms1',
        remoteParty: 'c@outside.example',
        type: 'sip',
        state: 'connected',
        deactivated: true,
      },
    ]);
    const connection = createRedisConnection(redisUrl, 'producer');
    const queue = new Queue<PolicyRecomputeJob>(POLICY_RECOMPUTE_QUEUE, { connection, prefix });
    await queue.add('recompute', { callIds: [call], reason: 'reconciliation' });
    await queue.close();
    connection.disconnect();
    await waitForLevel(key, 2);
    const desired = await message(call);
    assert.equal(desired?.messageText, 'Security Level 2');
    assert.equal(desired?.status, 'pending');
  });
});
