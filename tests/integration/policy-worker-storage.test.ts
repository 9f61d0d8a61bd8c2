import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { type CdrBatch, parseCdrBatch } from '@cms/cdr';
import { type Config, loadConfig } from '@cms/config';
import { callLegs, calls, cdrGaps, cdrQuarantine, cdrRecords, type Database, LEG_ENDED_BY_RECONCILIATION } from '@cms/db';
import { createLogger } from '@cms/observability';
import { addCdrBatches, type CdrBatchesQueue, createCdrBatchesQueue, createRedisConnection } from '@cms/queue';
import { eq, sql } from 'drizzle-orm';
import { storeSnapshot } from '../../services/cms-actuator/src/reconcile/snapshot-store.ts';
import { buildPolicyWorker } from '../../services/policy-worker/src/app.ts';
import { legLifecycleRecords, recordsXml, simpleCallRecords, type TestRecord } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';
import { hostPort, startTcpProxy } from '../helpers/tcp-proxy.ts';

interface Harness {
  db: Database;
  queue: CdrBatchesQueue;
  send(session: string, records: TestRecord[], node?: string | null): Promise<void>;
  count(session: string): Promise<number>;
}

async function harness(options: { databaseUrl?: (url: string) => Promise<string> } = {}): Promise<Harness> {
  const database = await testDatabase();
  const redis = await testRedis();
  const workerDbUrl = options.databaseUrl ? await options.databaseUrl(database.url) : database.url;
  const config: Config = loadConfig({
    env: {},
    overrides: { redis: { url: redis.url }, queue: { prefix: redis.prefix }, database: { url: workerDbUrl } },
  });
  const service = await buildPolicyWorker({ config, log: createLogger('policy-worker', 'silent') });
  const connection = createRedisConnection(redis.url, 'producer');
  const queue = createCdrBatchesQueue({ connection, prefix: redis.prefix });
  onTestFileEnd(async () => {
    await service.close();
    await queue.close();
    connection.disconnect();
  });
  const { db } = database;
  return {
    db,
    queue,
    async send(session, records, node = 'cms1') {
      const batch: CdrBatch = parseCdrBatch(recordsXml({ session, records }));
      await addCdrBatches(queue, [{ node, receivedAt: new Date().toISOString(), batch }]);
    },
    async count(session) {
      const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(cdrRecords).where(eq(cdrRecords.session, session));
      return row?.n ?? 0;
    },
  };
}

async function drained(h: Harness): Promise<void> {
  await eventually(async () => (await h.queue.getJobCounts('waiting', 'active', 'delayed')) as Record<string, number>, { what: 'queue' });
  await eventually(
    async () => {
      const c = await h.queue.getJobCounts('waiting', 'active', 'delayed');
      return (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) === 0;
    },
    { what: 'the queue to drain' },
  );
}

describe('policy-worker storage', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });

  test('stores every record of a batch with its envelope and raw form', async () => {
    const session = randomUUID();
    await h.send(session, simpleCallRecords());
    await eventually(async () => (await h.count(session)) === 5, { what: '5 records' });
    const [first] = await h.db
      .select()
      .from(cdrRecords)
      .where(eq(cdrRecords.session, session))
      .orderBy(cdrRecords.correlatorIndex)
      .limit(1);
    assert.equal(first?.type, 'callLegStart');
    assert.equal(first?.node, 'cms1');
    assert.equal(first?.correlatorIndex, 0);
    assert.equal(first?.raw['@type'], 'callLegStart');
  });

  test('stores a batch posted twice once', async () => {
    const session = randomUUID();
    const records = simpleCallRecords();
    await h.send(session, records);
    await h.send(session, records);
    await drained(h);
    assert.equal(await h.count(session), 5);
  });

  test('stores a batch split and re-sent in a different grouping once', async () => {
    const session = randomUUID();
    const records = simpleCallRecords();
    await h.send(session, records.slice(0, 3));
    await h.send(session, records.slice(1, 5));
    await h.send(session, [records[4] as TestRecord, records[0] as TestRecord]);
    await drained(h);
    assert.equal(await h.count(session), 5);
  });

  test('one row per record by (session, correlatorIndex): the same record to two receivers, and records whose recordIndex coincides', async () => {
    // recordIndex starts at 1 per session per receiver; correlatorIndex is the session's, the same for every
    // receiver. Receiver A was configured from the start (recordIndex = correlatorIndex + 1); receiver B was added
    // after 5 records, so its recordIndex starts at 1 at correlatorIndex 5.
    const session = randomUUID();
    const records = [...simpleCallRecords(0), ...simpleCallRecords(5)];
    const toA = records.map((r) => ({ ...r, recordIndex: r.correlatorIndex + 1 }));
    const toB = records.slice(5).map((r) => ({ ...r, recordIndex: r.correlatorIndex - 4 }));
    // B's copies of records 5..9 carry the recordIndex 1..5 that records 0..4 carry at A: different records, same
    // recordIndex; and each of records 5..9 arrives twice with two different recordIndexes.
    assert.deepEqual(
      toB.map((r) => r.recordIndex),
      toA.slice(0, 5).map((r) => r.recordIndex),
    );
    // A was unreachable for a while (CMS buffered its records), so B's copies come first.
    await h.send(session, toB);
    await drained(h);
    await h.send(session, toA.slice(0, 5));
    await h.send(session, toA.slice(5));
    await drained(h);
    // Both receivers' POSTs of the same records in one job: deduplicated before the insert, on the same key.
    const post = (rs: TestRecord[]) => ({
      node: 'cms1',
      receivedAt: new Date().toISOString(),
      batch: parseCdrBatch(recordsXml({ session, records: rs })),
    });
    await addCdrBatches(h.queue, [post(toB.slice(2)), post(toA.slice(2))]);
    await drained(h);
    const rows = await h.db
      .select({ correlatorIndex: cdrRecords.correlatorIndex, type: cdrRecords.type })
      .from(cdrRecords)
      .where(eq(cdrRecords.session, session))
      .orderBy(cdrRecords.correlatorIndex);
    assert.deepEqual(
      rows,
      records.map((r) => ({ correlatorIndex: r.correlatorIndex, type: r.type })),
      'every record exactly once: none stored twice, none lost to another with the same recordIndex',
    );
  });

  test('builds the call and its leg whatever the order, including a leg before its call', async () => {
    const ids = { call: randomUUID(), leg: randomUUID(), correlator: randomUUID() };
    const records = simpleCallRecords(0, ids);
    const session = randomUUID();
    // Leg end first, then the update naming the call, then start records.
    for (const i of [3, 2, 0, 1, 4]) await h.send(session, [records[i] as TestRecord]);
    await drained(h);
    const [leg] = await h.db.select().from(callLegs).where(eq(callLegs.id, ids.leg));
    assert.equal(leg?.callId, ids.call);
    assert.equal(leg?.state, 'connected');
    assert.equal(leg?.remoteParty, 'alice@corp.example.com');
    assert.equal(leg?.endReason, 'remoteTeardown');
    assert.ok(leg?.endedAt);
    const [call] = await h.db.select().from(calls).where(eq(calls.id, ids.call));
    assert.equal(call?.callCorrelator, ids.correlator);
    assert.equal(call?.name, 'Team');
    assert.equal(call?.durationSeconds, 1801);
    assert.ok(call?.endedAt);
  });

  test('gives a leg the same row whether its records arrive one by one in order, all together or backwards', async () => {
    const call = randomUUID();
    const lifecycle = (leg: string) => legLifecycleRecords({ leg, call }, 10);
    const [inOrder, together, backwards] = [randomUUID(), randomUUID(), randomUUID()];
    const session = randomUUID();
    // One at a time, each stored before the next: every record after the first folds onto the stored row.
    for (const record of lifecycle(inOrder)) {
      await h.send(session, [record]);
      await drained(h);
    }
    await h.send(randomUUID(), lifecycle(together));
    // Backwards, one at a time: every record is older than the stored row, so the leg is refolded each time.
    const backwardsSession = randomUUID();
    for (const record of lifecycle(backwards).reverse()) {
      await h.send(backwardsSession, [record]);
      await drained(h);
    }
    await drained(h);
    const row = async (id: string) => {
      const [leg] = await h.db.select().from(callLegs).where(eq(callLegs.id, id));
      assert.ok(leg, `leg ${id} stored`);
      const { id: _id, session: _session, updatedAt: _updatedAt, ...fields } = leg;
      return fields;
    };
    const expected = await row(together);
    assert.equal(expected.displayName, 'Alice');
    assert.equal(expected.inIvr, false);
    assert.equal(expected.deactivated, false);
    assert.equal(expected.seq, 19);
    assert.ok(expected.endedAt);
    assert.deepEqual(await row(inOrder), expected);
    assert.deepEqual(await row(backwards), expected);
  });

  test('refolds a leg across a month boundary from all of its records when a middle record arrives last', async () => {
    // The refold reads a leg's records from a day before its start on (storage/legs.ts refoldSince), so the months
    // it reads must reach back to the callLegStart stored in the previous month's partition.
    const call = randomUUID();
    const times = ['2026-10-31T23:50:00Z', '2026-10-31T23:55:00Z', '2026-11-01T00:10:00Z', '2026-11-01T00:20:00Z', '2026-11-01T01:00:00Z'];
    const lifecycle = (leg: string) => legLifecycleRecords({ leg, call }, 10).map((record, i) => ({ ...record, time: times[i] }));
    const [together, late] = [randomUUID(), randomUUID()];
    await h.send(randomUUID(), lifecycle(together));
    const session = randomUUID();
    const [start, ivr, connected, admitted, end] = lifecycle(late);
    // Start and end first; then the middle ones, each older than the stored row (refolded), the one in the lobby last.
    for (const batch of [[start, end], [ivr], [admitted], [connected]]) {
      await h.send(session, batch as TestRecord[]);
      await drained(h);
    }
    const row = async (id: string) => {
      const [leg] = await h.db.select().from(callLegs).where(eq(callLegs.id, id));
      assert.ok(leg, `leg ${id} stored`);
      const { id: _id, session: _session, updatedAt: _updatedAt, ...fields } = leg;
      return fields;
    };
    const expected = await row(together);
    assert.equal(expected.startedAt, '2026-10-31 23:50:00+00');
    assert.equal(expected.displayName, 'Alice');
    assert.deepEqual(await row(late), expected);
  });

  test('a record of an unknown type naming a leg is stored but leaves the leg as its known records make it', async () => {
    const ids = { call: randomUUID(), leg: randomUUID() };
    const [start, , connected] = legLifecycleRecords(ids) as [TestRecord, TestRecord, TestRecord];
    const session = randomUUID();
    await h.send(session, [start]);
    await drained(h);
    await h.send(session, [
      { type: 'participantMoved', correlatorIndex: 3, body: `<callLeg id="${ids.leg}"><displayName>Moved</displayName></callLeg>` },
    ]);
    await drained(h);
    const [afterUnknown] = await h.db.select().from(callLegs).where(eq(callLegs.id, ids.leg));
    assert.equal(afterUnknown?.seq, 0);
    assert.equal(afterUnknown?.displayName, 'Guest');
    await h.send(session, [connected]);
    await drained(h);
    const [leg] = await h.db.select().from(callLegs).where(eq(callLegs.id, ids.leg));
    assert.equal(leg?.seq, 4);
    assert.equal(leg?.displayName, 'Alice');
    assert.equal(await h.count(session), 3);
  });

  test('a leg ended by reconciliation stays ended when a late record arrives, until its callLegEnd gives the real end', async () => {
    const ids = { call: randomUUID(), leg: randomUUID() };
    const [start, , connected, admitted, end] = legLifecycleRecords(ids) as TestRecord[];
    const session = randomUUID();
    await h.send(session, [start as TestRecord, connected as TestRecord]);
    await drained(h);
    const leg = async () => (await h.db.select().from(callLegs).where(eq(callLegs.id, ids.leg)))[0];
    // What the actuator stores when CMS answers 404 for the call (a bridge restart lost its CDRs).
    const { endedCallIds } = await storeSnapshot(h.db, 'cms1', { calls: [], legs: [], gone: [ids.call], legsRead: 0 });
    assert.deepEqual(endedCallIds, [ids.call]);
    const reconciled = await leg();
    assert.ok(reconciled?.endedAt);
    assert.equal(reconciled?.endReason, LEG_ENDED_BY_RECONCILIATION);

    await h.send(session, [admitted as TestRecord]);
    await drained(h);
    const late = await leg();
    assert.equal(late?.endedAt, reconciled?.endedAt, 'a record from before the end does not reopen the leg');
    assert.equal(late?.endReason, LEG_ENDED_BY_RECONCILIATION);
    assert.equal(late?.deactivated, false, 'what the late record says is still folded in');

    await h.send(session, [end as TestRecord]);
    await drained(h);
    const ended = await leg();
    assert.equal(ended?.endReason, 'remoteTeardown');
    assert.equal(ended?.endedAt, '2026-11-21 09:30:00+00');
  });

  test('lists a call named only by a leg (its callStart not yet received)', async () => {
    const ids = { call: randomUUID(), leg: randomUUID(), correlator: randomUUID() };
    await h.send(randomUUID(), [simpleCallRecords(0, ids)[2] as TestRecord]);
    const call = await eventually(async () => (await h.db.select().from(calls).where(eq(calls.id, ids.call)))[0], {
      what: 'placeholder call',
    });
    assert.equal(call.name, null);
    assert.equal(call.node, 'cms1');
  });

  test('records a gap reported by numPreceedingRecordsMissing', async () => {
    const session = randomUUID();
    const [first] = simpleCallRecords(40);
    await h.send(session, [{ ...(first as TestRecord), extraAttributes: ' numPreceedingRecordsMissing="12"' }]);
    const gap = await eventually(async () => (await h.db.select().from(cdrGaps).where(eq(cdrGaps.session, session)))[0], {
      what: 'gap row',
    });
    assert.equal(gap.missing, 12);
    assert.equal(gap.correlatorIndex, 40);
  });

  test('keeps invalid records in quarantine once, however often CMS re-sends them', async () => {
    const session = randomUUID();
    const bad: TestRecord = { type: 'callLegStart', correlatorIndex: 3, time: 'not-a-time', body: `<callLeg id="${randomUUID()}"/>` };
    await h.send(session, [bad]);
    await h.send(session, [bad, ...simpleCallRecords(10)]);
    await drained(h);
    const rows = await h.db.select().from(cdrQuarantine).where(eq(cdrQuarantine.session, session));
    assert.equal(rows.length, 1);
    assert.match(rows[0]?.reason ?? '', /time/);
    assert.equal(await h.count(session), 5);
  });

  test('stores records of unknown future types', async () => {
    const session = randomUUID();
    await h.send(session, [{ type: 'meetingRecap', correlatorIndex: 0, body: '<recap id="r1"><summary>x</summary></recap>' }], null);
    await eventually(async () => (await h.count(session)) === 1, { what: 'the unknown record' });
  });
});

describe('policy-worker when Postgres goes away', () => {
  test('keeps the batch in the queue and stores it once Postgres is back', async () => {
    let proxy: Awaited<ReturnType<typeof startTcpProxy>> | undefined;
    const h = await harness({
      databaseUrl: async (url) => {
        const { host, port } = hostPort(url, 5432);
        proxy = await startTcpProxy(host, port);
        onTestFileEnd(() => proxy?.close());
        return proxy.url(url);
      },
    });
    assert.ok(proxy);
    await proxy.cut();
    const session = randomUUID();
    await h.send(session, simpleCallRecords());
    // The worker holds the batch (retrying with back-off) rather than failing it: no attempt of the job is used up.
    const held = await eventually(
      async () => {
        const [job] = await h.queue.getJobs(['delayed', 'waiting', 'active', 'failed']);
        return job && (await job.getState()) === 'active' ? job : undefined;
      },
      { what: 'the batch held while Postgres is unreachable' },
    );
    assert.equal(held.attemptsMade, 0);
    assert.equal(await h.count(session), 0);
    await proxy.restore();
    await eventually(async () => (await h.count(session)) === 5, { what: 'records stored after Postgres came back', timeoutMs: 30_000 });
  });
});
