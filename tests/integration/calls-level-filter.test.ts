/**
 * GET /api/v1/calls?level= lists the calls whose meeting is at that level now. The filter reads a copy of the
 * meeting's level on each calls row (migration 0011, kept by triggers); these tests change meetings through the real
 * policy worker (CDRs in, decisions stored) and check that the filter always agrees with the level the list shows,
 * which is read from the meetings row: level changes, a second bridge's instance joining a decided meeting, a
 * callCorrelator arriving after the call's legs, and a meeting nobody counts in any more.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { parseCdrBatch } from '@cms/cdr';
import { loadConfig } from '@cms/config';
import { type Database, meetings, pg } from '@cms/db';
import { createLogger } from '@cms/observability';
import { addCdrBatches, type CdrBatchesQueue, createCdrBatchesQueue, createRedisConnection } from '@cms/queue';
import { eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { buildPolicyWorker } from '../../services/policy-worker/src/app.ts';
import { callStart, participantJoin, participantLeaves, recordsXml, type TestRecord } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';
import { bearer, recordsApiConfig, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';

const POLICY = { secureDomains: ['secure.example'], internalDomains: ['corp.example'] };
const node = (name: string) => ({ name, url: `https://${name}.example.com:445`, username: 'api', password: 'secret' });

// At top level: startRecordsApi closes the API after the file's tests (an `after` registered in a `before` hook
// would close it when the hook ends).
const database = await testDatabase();
const redis = await testRedis();
const db: Database = database.db;
const url = database.url;
const api: FastifyInstance = await startRecordsApi(db, { config: recordsApiConfig(database.url, undefined, POLICY) });
const worker = await buildPolicyWorker({
  config: loadConfig({
    env: {},
    overrides: {
      redis: { url: redis.url },
      queue: { prefix: redis.prefix },
      database: { url: database.url },
      cms: { nodes: [node('cms1'), node('cms2')] },
      policy: POLICY,
    },
  }),
  log: createLogger('policy-worker', 'silent'),
});
const connection = createRedisConnection(redis.url, 'producer');
const cdrQueue: CdrBatchesQueue = createCdrBatchesQueue({ connection, prefix: redis.prefix });
onTestFileEnd(async () => {
  await worker.close();
  await cdrQueue.close();
  connection.disconnect();
});

function bridge(name: string) {
  const session = randomUUID();
  let index = 0;
  return {
    next: (n = 1) => {
      const i = index;
      index += n;
      return i;
    },
    async send(records: TestRecord[]) {
      const batch = parseCdrBatch(recordsXml({ session, records }));
      await addCdrBatches(cdrQueue, [{ node: name, receivedAt: new Date().toISOString(), batch }]);
    },
  };
}

interface ListedCall {
  id: string;
  meetingKey: string;
  level: number | null;
}

async function page(query: string): Promise<ListedCall[]> {
  const res = await api.inject({ method: 'GET', url: `/api/v1/calls?limit=500${query}`, headers: bearer(TOKENS.viewer) });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<{ calls: ListedCall[] }>().calls;
}

/** The ids of `callIds` that /calls?level=N lists. */
async function listedAt(level: number, callIds: string[]): Promise<string[]> {
  return (await page(`&level=${level}`)).map((c) => c.id).filter((id) => callIds.includes(id));
}

async function meetingLevel(key: string): Promise<number | null | undefined> {
  const [row] = await db.select({ level: meetings.level }).from(meetings).where(eq(meetings.meetingKey, key));
  return row?.level;
}

/** Waits until the policy worker has stored `level` for the meeting. */
async function decided(key: string, level: number | null): Promise<void> {
  await eventually(async () => (await meetingLevel(key)) === level, { what: `meeting ${key} at level ${level}` });
}

/**
 * Every listed call is in /calls?level=N exactly when the list shows it at level N, and what the list shows is its
 * meeting's stored level.
 */
async function assertFilterAgreesWithLevels(): Promise<void> {
  const all = await page('');
  for (const level of [1, 2, 3]) {
    assert.deepEqual(
      (await page(`&level=${level}`)).map((c) => c.id),
      all.filter((c) => c.level === level).map((c) => c.id),
      `level=${level} lists exactly the calls shown at level ${level}, in the list's order`,
    );
  }
  for (const call of all) assert.equal(call.level, (await meetingLevel(call.meetingKey)) ?? null, `${call.id} shows its meeting's level`);
}

describe('GET /api/v1/calls?level= follows the meeting level the policy worker decides', () => {
  test('a level change of the meeting moves both of its instances between the level filters', async () => {
    const cms1 = bridge('cms1');
    const cms2 = bridge('cms2');
    const key = randomUUID();
    const [call1, call2] = [randomUUID(), randomUUID()];
    await cms1.send([
      callStart(cms1.next(), call1, key),
      ...participantJoin(cms1.next(2), { call: call1, remoteParty: 'a@secure.example' }).records,
    ]);
    await decided(key, 1);
    assert.deepEqual(await listedAt(1, [call1, call2]), [call1]);

    // The second bridge's instance joins a meeting that already has its level.
    await cms2.send([callStart(cms2.next(), call2, key)]);
    await eventually(async () => (await listedAt(1, [call1, call2])).length === 2, { what: 'the second instance listed at level 1' });

    const guest = participantJoin(cms2.next(2), { call: call2, remoteParty: 'guest', type: 'acano', subType: 'webApp', guest: true });
    await cms2.send(guest.records);
    await decided(key, 3);
    assert.deepEqual(await listedAt(1, [call1, call2]), [], 'no longer listed at level 1');
    assert.deepEqual((await listedAt(3, [call1, call2])).sort(), [call1, call2].sort(), 'both instances listed at level 3');

    await cms2.send([participantLeaves(cms2.next(), guest.leg)]);
    await decided(key, 1);
    assert.deepEqual(await listedAt(3, [call1, call2]), []);
    assert.deepEqual((await listedAt(1, [call1, call2])).sort(), [call1, call2].sort());
    await assertFilterAgreesWithLevels();
  });

  test('a call decided before its callStart takes the level of the meeting its callCorrelator names', async () => {
    const cms1 = bridge('cms1');
    const key = randomUUID();
    const [first, late] = [randomUUID(), randomUUID()];
    await cms1.send([
      callStart(cms1.next(), first, key),
      ...participantJoin(cms1.next(2), { call: first, remoteParty: 'guest', type: 'acano', subType: 'webApp', guest: true }).records,
    ]);
    await decided(key, 3);
    // Legs of `late` arrive before its callStart: it is its own (provisional) meeting, decided at level 2.
    await cms1.send(participantJoin(cms1.next(2), { call: late, remoteParty: 'b@corp.example' }).records);
    await decided(late, 2);
    assert.deepEqual(await listedAt(2, [first, late]), [late]);
    // Its callStart names the meeting at level 3: the call moves there (and the meeting stays at 3, the guest's).
    await cms1.send([callStart(cms1.next(), late, key)]);
    await eventually(async () => (await listedAt(3, [first, late])).length === 2, { what: 'the late call listed at level 3' });
    assert.deepEqual(await listedAt(2, [first, late]), [], 'not listed at its provisional level any more');
    await assertFilterAgreesWithLevels();
  });

  test('a meeting nobody counts in any more leaves every level filter', async () => {
    const cms1 = bridge('cms1');
    const key = randomUUID();
    const call = randomUUID();
    const person = participantJoin(cms1.next(2), { call, remoteParty: 'c@corp.example' });
    await cms1.send([callStart(cms1.next(), call, key), ...person.records]);
    await decided(key, 2);
    assert.deepEqual(await listedAt(2, [call]), [call]);
    await cms1.send([participantLeaves(cms1.next(), person.leg)]);
    await decided(key, null);
    for (const level of [1, 2, 3]) assert.deepEqual(await listedAt(level, [call]), [], `not listed at level ${level}`);
    await assertFilterAgreesWithLevels();
  });
});

describe('call rows and meeting locks', () => {
  test("a batch for a call waits for its meeting's lock before locking the call row, so a level change never deadlocks with it", async () => {
    const cms1 = bridge('cms1');
    const key = randomUUID();
    const call = randomUUID();
    await cms1.send([callStart(cms1.next(), call, key), ...participantJoin(cms1.next(2), { call, remoteParty: 'a@corp.example' }).records]);
    await decided(key, 2);
    // A decision of this meeting in progress: its advisory lock held (as lockMeetings takes it).
    const decision = new pg.Client({ connectionString: url });
    await decision.connect();
    try {
      await decision.query('BEGIN');
      await decision.query(`SELECT pg_advisory_xact_lock(hashtextextended('meeting:' || $1::text, 7271))`, [key]);
      const joining = participantJoin(cms1.next(2), { call, remoteParty: 'guest', type: 'acano', subType: 'webApp', guest: true });
      await cms1.send(joining.records);
      await eventually(
        async () =>
          (
            await decision.query(
              `SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()`,
            )
          ).rowCount === 1,
        { what: "the worker's transaction waiting for the meeting's lock" },
      );
      // The decision changes the meeting's level: the trigger updates the call's row, which the waiting batch has not
      // locked (NOWAIT: a row lock held by the batch would fail here at once instead of deadlocking).
      await decision.query(`SELECT id FROM calls WHERE id = $1 FOR UPDATE NOWAIT`, [call]);
      await decision.query(`UPDATE meetings SET level = 1 WHERE meeting_key = $1`, [key]);
      await decision.query('COMMIT');
    } finally {
      await decision.end();
    }
    // The batch goes on, decides the meeting again (the guest makes it 3) and the call follows.
    await decided(key, 3);
    assert.deepEqual(await listedAt(3, [call]), [call]);
    await assertFilterAgreesWithLevels();
  });
});

describe('the copy of the level on calls rows (migration 0011 triggers)', () => {
  test('a meetings row renamed or deleted takes its level off the calls of the old key', async () => {
    // The worker renames a provisional meeting (the call's id) to the real one and deletes provisional rows it does
    // not carry over (policy-worker security/persist-decisions.ts); here the same statements directly.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const [solo, joined] = [randomUUID(), randomUUID()];
      const key = randomUUID();
      await client.query(`INSERT INTO calls (id, started_at) VALUES ($1, now()), ($2, now())`, [solo, joined]);
      await client.query(`INSERT INTO meetings (meeting_key, level) VALUES ($1, 2), ($2, 1)`, [solo, joined]);
      const levels = async () =>
        Object.fromEntries(
          (
            await client.query<{ id: string; level: number | null }>(`SELECT id, level FROM calls WHERE id = ANY($1)`, [[solo, joined]])
          ).rows.map((r) => [r.id, r.level]),
        );
      assert.deepEqual(await levels(), { [solo]: 2, [joined]: 1 }, 'inserted meetings rows set their calls');
      await client.query('BEGIN');
      await client.query(`UPDATE calls SET call_correlator = $1 WHERE id = $2`, [key, joined]);
      await client.query(`UPDATE meetings SET meeting_key = $1 WHERE meeting_key = $2`, [key, joined]);
      await client.query('COMMIT');
      assert.deepEqual(await levels(), { [solo]: 2, [joined]: 1 }, 'the renamed meeting keeps its call');
      await client.query(`UPDATE meetings SET level = 3 WHERE meeting_key = $1`, [key]);
      assert.deepEqual(await levels(), { [solo]: 2, [joined]: 3 });
      await client.query(`DELETE FROM meetings WHERE meeting_key = ANY($1)`, [[solo, key]]);
      assert.deepEqual(await levels(), { [solo]: null, [joined]: null }, 'deleted meetings rows clear their calls');
    } finally {
      await client.end();
    }
  });
});
