import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { type Simulator, type SimulatorOptions, startSimulator } from '@cms/cms-sim';
import { Api, eventually, FAST_CDR, TestReceiver } from './helpers.ts';

/** Delivery rules of docs/cms-interfaces.md §1.1-1.2: indexes, sessions, batching, re-sends, buffering, alarm. */
describe('CDR delivery', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(options: SimulatorOptions = {}, receivers = 1): Promise<{ sim: Simulator; rx: TestReceiver[] }> {
    const rx: TestReceiver[] = [];
    for (let i = 0; i < receivers; i++) {
      const r = await TestReceiver.start();
      rx.push(r);
      cleanups.push(() => r.close());
    }
    const sim = await startSimulator({
      seed: 5,
      controlPort: null,
      cdrReceivers: rx.map((r) => r.url()),
      ...options,
      cdr: { ...FAST_CDR, ...options.cdr },
    });
    cleanups.push(() => sim.stop());
    return { sim, rx };
  }

  /** One callStart + callEnd pair: two records. */
  function twoRecords(sim: Simulator): void {
    const m = sim.startCall();
    sim.endCall(m);
  }

  test('correlatorIndex is shared by all receivers while recordIndex counts per receiver', async () => {
    const { sim, rx } = await setup({}, 2);
    const [first, second] = rx as [TestReceiver, TestReceiver];
    twoRecords(sim);
    await sim.waitForCdrsDelivered();
    // Only the first receiver is configured for the first two records from now on.
    sim.setCdrReceivers([first.url()]);
    twoRecords(sim);
    await sim.waitForCdrsDelivered();
    const api = new Api(sim.bridges[0] as never);
    const added = await api.post('/system/cdrReceivers', { url: second.url('/late') });
    assert.equal(added.status, 200);
    twoRecords(sim);
    await sim.waitForCdrsDelivered();
    const a = first.acceptedRecords();
    const b = second.acceptedRecords();
    assert.deepEqual(
      a.map((r) => r.correlatorIndex),
      [0, 1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      a.map((r) => r.recordIndex),
      [1, 2, 3, 4, 5, 6],
    );
    assert.deepEqual(
      b.map((r) => r.correlatorIndex),
      [0, 1, 4, 5],
    );
    assert.deepEqual(
      b.map((r) => r.recordIndex),
      [1, 2, 1, 2],
      'a receiver added later starts its own recordIndex at 1',
    );
  });

  test('a restart starts a new session whose correlatorIndex begins at 0 again', async () => {
    const { sim, rx } = await setup({ bridges: [{ name: 'cms-1' }, { name: 'cms-2' }] });
    const before = sim.bridge('cms-1');
    twoRecords(sim);
    await sim.waitForCdrsDelivered();
    const restarted = sim.restartBridge('cms-1');
    assert.notEqual(restarted.session, before.session);
    assert.equal(restarted.callBridgeId, before.callBridgeId, 'the Call Bridge id is stable across restarts');
    twoRecords(sim);
    await sim.waitForCdrsDelivered();
    const batches = (rx[0] as TestReceiver).accepted();
    const oldSession = batches.filter((b) => b.session === before.session).flatMap((b) => b.records);
    const newSession = batches.filter((b) => b.session === restarted.session).flatMap((b) => b.records);
    assert.deepEqual(
      oldSession.map((r) => r.correlatorIndex),
      [0, 1],
    );
    assert.deepEqual(
      newSession.map((r) => [r.correlatorIndex, r.recordIndex]),
      [
        [0, 1],
        [1, 2],
      ],
    );
    const status = await new Api(restarted).get('/system/status');
    assert.equal(status.xml.status.cdrCorrelatorIndex, '2', 'cdrCorrelatorIndex is the index of the next record');
  });

  test('records generated close together travel in one POST', async () => {
    const { sim, rx } = await setup({ cdr: { flushDelayMs: 50, maxRecordsPerPost: 50 } });
    const m = sim.startCall();
    for (let i = 0; i < 5; i++) sim.join({ meeting: m });
    await sim.waitForCdrsDelivered();
    const posts = (rx[0] as TestReceiver).accepted();
    assert.equal(posts.length, 1);
    assert.equal(posts[0]?.records.length, 1 + 5 * 2);
  });

  test('a POST carries at most maxRecordsPerPost records', async () => {
    const { sim, rx } = await setup({ cdr: { flushDelayMs: 50, maxRecordsPerPost: 4 } });
    const m = sim.startCall();
    for (let i = 0; i < 5; i++) sim.join({ meeting: m });
    await sim.waitForCdrsDelivered();
    const sizes = (rx[0] as TestReceiver).accepted().map((b) => b.records.length);
    assert.deepEqual(sizes, [4, 4, 3]);
  });

  test('later batches reuse the keep-alive connection', async () => {
    const { sim, rx } = await setup();
    const receiver = rx[0] as TestReceiver;
    for (let i = 0; i < 3; i++) {
      twoRecords(sim);
      await sim.waitForCdrsDelivered();
    }
    assert.ok(receiver.accepted().length >= 3);
    assert.equal(new Set(receiver.posts.map((p) => p.connection)).size, 1);
  });

  test('a batch not answered 200 is re-sent unchanged until it is, and later records wait behind it', async () => {
    const { sim, rx } = await setup({ cdr: { maxRecordsPerPost: 3 } });
    const receiver = rx[0] as TestReceiver;
    receiver.failNext(3);
    const m = sim.startCall();
    sim.join({ meeting: m });
    await eventually(() => receiver.posts.length >= 2, { what: 'a re-send' });
    sim.join({ meeting: m });
    sim.endCall(m);
    await sim.waitForCdrsDelivered();
    const [failed1, failed2, failed3, firstOk] = receiver.posts;
    assert.deepEqual([failed1?.status, failed2?.status, failed3?.status, firstOk?.status], [500, 500, 500, 200]);
    assert.equal(failed2?.body, failed1?.body, 're-sent byte for byte');
    assert.equal(firstOk?.body, failed1?.body);
    const indexes = receiver.acceptedRecords().map((r) => r.correlatorIndex);
    assert.deepEqual(
      indexes,
      indexes.map((_, i) => i),
      'delivered in order, nothing skipped',
    );
    const stats = sim.cdrStats()[0];
    assert.equal(stats?.resends, 3);
    assert.equal(stats?.acknowledged, indexes.length);
  });

  test('a receiver that never answers is timed out and the batch re-sent', async () => {
    const { sim, rx } = await setup({ cdr: { requestTimeoutMs: 100 } });
    const receiver = rx[0] as TestReceiver;
    receiver.mode = 'hang';
    twoRecords(sim);
    await eventually(() => receiver.posts.length >= 2, { what: 'a re-send after the timeout' });
    receiver.mode = 'ok';
    await sim.waitForCdrsDelivered();
    assert.deepEqual(
      receiver.acceptedRecords().map((r) => r.correlatorIndex),
      [0, 1],
    );
  });

  test('beyond bufferLimit the oldest records are discarded and the next record sent says how many', async () => {
    const { sim, rx } = await setup({ cdr: { bufferLimit: 5, maxRecordsPerPost: 10 } });
    const receiver = rx[0] as TestReceiver;
    receiver.mode = 'fail';
    const m = sim.startCall(); // 1 record
    for (let i = 0; i < 3; i++) sim.join({ meeting: m }); // 6 records
    await eventually(() => sim.cdrStats()[0]?.discarded === 2, { what: 'two records discarded' });
    receiver.mode = 'ok';
    await sim.waitForCdrsDelivered();
    const records = receiver.acceptedRecords();
    assert.deepEqual(
      records.map((r) => r.correlatorIndex),
      [2, 3, 4, 5, 6],
      'the two oldest are gone',
    );
    assert.deepEqual(
      records.map((r) => r.numPreceedingRecordsMissing),
      [2, null, null, null, null],
    );
    assert.deepEqual(
      records.map((r) => r.recordIndex),
      [1, 2, 3, 4, 5],
      'recordIndex shows no gap',
    );
    assert.match(receiver.posts.at(-1)?.body ?? '', /numPreceedingRecordsMissing="2"/);
  });

  test('when the buffer overflows under a POST being re-sent, the records left keep their recordIndex and no index names two records', async () => {
    const { sim, rx } = await setup({ cdr: { bufferLimit: 3, maxRecordsPerPost: 10 } });
    const receiver = rx[0] as TestReceiver;
    receiver.mode = 'fail';
    twoRecords(sim); // correlator 0 and 1 go out as recordIndex 1 and 2, and fail
    await eventually(() => receiver.posts.length >= 1, { what: 'the first POST' });
    const m = sim.startCall();
    sim.endCall(m); // correlator 2 and 3: four records for a buffer of three, so correlator 0 is discarded
    await eventually(() => sim.cdrStats()[0]?.discarded === 1, { what: 'one record discarded' });
    receiver.mode = 'ok';
    await sim.waitForCdrsDelivered();
    const accepted = receiver.acceptedRecords();
    assert.deepEqual(
      accepted.map((r) => [r.correlatorIndex, r.recordIndex, r.numPreceedingRecordsMissing]),
      [
        [1, 2, 1],
        [2, 3, null],
        [3, 4, null],
      ],
      'correlator 1 is re-sent with the recordIndex it was first sent with',
    );
    const indexOf = new Map<number, number>();
    const recordAt = new Map<number, number>();
    for (const r of receiver.posts.flatMap((p) => p.batch.records)) {
      assert.equal(indexOf.get(r.correlatorIndex) ?? r.recordIndex, r.recordIndex, `correlator ${r.correlatorIndex} kept its recordIndex`);
      assert.equal(recordAt.get(r.recordIndex) ?? r.correlatorIndex, r.correlatorIndex, `recordIndex ${r.recordIndex} names one record`);
      indexOf.set(r.correlatorIndex, r.recordIndex);
      recordAt.set(r.recordIndex, r.correlatorIndex);
    }
  });

  test('while delivery fails the bridge raises cdrConnectionFailure, and clears it once delivery works', async () => {
    const { sim, rx } = await setup();
    const receiver = rx[0] as TestReceiver;
    const api = new Api(sim.bridges[0] as never);
    receiver.mode = 'fail';
    twoRecords(sim);
    await eventually(async () => (await api.get('/system/alarms')).xml.alarms['@total'] === '1', { what: 'the alarm' });
    const alarms = await api.get('/system/alarms');
    assert.equal(alarms.xml.alarms.alarm[0].type, 'cdrConnectionFailure');
    receiver.mode = 'ok';
    await sim.waitForCdrsDelivered();
    const cleared = await api.get('/system/alarms');
    assert.equal(cleared.xml.alarms['@total'], '0');
  });

  test('a simulated receiver outage fails delivery without reaching the receiver, and recovery delivers everything', async () => {
    const { sim, rx } = await setup();
    const receiver = rx[0] as TestReceiver;
    sim.receiverOutage(true);
    twoRecords(sim);
    await eventually(() => (sim.cdrStats()[0]?.failedPosts ?? 0) >= 2, { what: 'failed attempts' });
    assert.equal(receiver.posts.length, 0);
    assert.equal(sim.inspect().bridges[0]?.alarms[0]?.type, 'cdrConnectionFailure');
    sim.receiverOutage(false);
    await sim.waitForCdrsDelivered();
    assert.equal(receiver.acceptedRecords().length, 2);
  });

  test('at most four receivers per bridge: a fifth is refused', async () => {
    const { sim } = await setup({ cdrReceivers: [] });
    const api = new Api(sim.bridges[0] as never);
    for (let i = 0; i < 4; i++) assert.equal((await api.post('/system/cdrReceivers', { url: `http://127.0.0.1:9/r${i}` })).status, 200);
    const fifth = await api.post('/system/cdrReceivers', { url: 'http://127.0.0.1:9/r5' });
    assert.equal(fifth.status, 400);
    assert.ok(fifth.xml.failureDetails);
    const list = await api.get('/system/cdrReceivers');
    assert.equal(list.xml.cdrReceivers['@total'], '4');
  });
});
