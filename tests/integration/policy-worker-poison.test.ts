/**
 * Poison records never hold up their neighbours. A record Postgres refuses (a value the parser let through, an
 * old job queued before the parser checked it, any other source) used to fail its whole batch, which was retried
 * for a day and then left failed: the valid records acknowledged in the same POST were never stored. Jobs are
 * enqueued here directly, past the parser's checks, to prove the worker's mechanism on its own.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { type CdrBatch, type CdrRecord, parseCdrBatch } from '@cms/cdr';
import { type Config, loadConfig } from '@cms/config';
import { callLegs, cdrQuarantine, cdrRecords, type Database } from '@cms/db';
import { createLogger } from '@cms/observability';
import { addCdrBatches, type CdrBatchesQueue, createCdrBatchesQueue, createRedisConnection } from '@cms/queue';
import { eq } from 'drizzle-orm';
import { buildPolicyWorker } from '../../services/policy-worker/src/app.ts';
import { recordsXml, simpleCallRecords, type TestRecord } from '../helpers/cdr-xml.ts';
import { eventually, onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';

let db: Database;
let queue: CdrBatchesQueue;

before(async () => {
  const database = await testDatabase();
  const redis = await testRedis();
  const config: Config = loadConfig({
    env: {},
    overrides: { redis: { url: redis.url }, queue: { prefix: redis.prefix }, database: { url: database.url } },
  });
  const service = await buildPolicyWorker({ config, db: database.db, log: createLogger('policy-worker', 'silent') });
  const connection = createRedisConnection(redis.url, 'producer');
  queue = createCdrBatchesQueue({ connection, prefix: redis.prefix });
  onTestFileEnd(async () => {
    await service.close();
    await queue.obliterate({ force: true });
    await queue.close();
    connection.disconnect();
  });
  db = database.db;
});

function batch(session: string, records: TestRecord[]): CdrBatch {
  return parseCdrBatch(recordsXml({ session, records }));
}

/** Changes a parsed record behind the parser's back. */
function poison(record: CdrRecord, change: (record: CdrRecord) => void): void {
  change(record);
}

async function enqueue(...batches: CdrBatch[]): Promise<string> {
  const job = await addCdrBatches(
    queue,
    batches.map((b) => ({ node: 'cms1', receivedAt: new Date().toISOString(), batch: b })),
  );
  return job.id as string;
}

/** Waits until the job has completed (removeOnComplete: it is gone), failing at once if it failed an attempt. */
async function completed(jobId: string): Promise<void> {
  await eventually(
    async () => {
      const job = await queue.getJob(jobId);
      if (job && job.attemptsMade > 0) throw new Error(`job ${jobId} failed an attempt: ${job.failedReason}`);
      return job === undefined;
    },
    { what: `job ${jobId} to complete`, timeoutMs: 20_000, intervalMs: 50 },
  );
}

async function stored(session: string): Promise<number[]> {
  const rows = await db
    .select({ correlatorIndex: cdrRecords.correlatorIndex })
    .from(cdrRecords)
    .where(eq(cdrRecords.session, session))
    .orderBy(cdrRecords.correlatorIndex);
  return rows.map((r) => r.correlatorIndex);
}

async function quarantined(session: string) {
  return db.select().from(cdrQuarantine).where(eq(cdrQuarantine.session, session)).orderBy(cdrQuarantine.position);
}

describe('a record Postgres refuses', () => {
  test('a time offset Postgres cannot store: the neighbours are stored once, the record is quarantined with the reason, the job completes', async () => {
    const session = randomUUID();
    const ids = { call: randomUUID(), leg: randomUUID(), correlator: randomUUID() };
    // Five records of a call and a record the parser rejects (position 2), as CMS could send them.
    const records = simpleCallRecords(0, ids);
    const b = batch(session, [
      ...records.slice(0, 2),
      { type: 'callLegUpdate', correlatorIndex: 50, time: 'never', body: '<callLeg id="x"/>' },
      ...records.slice(2),
    ]);
    assert.equal(b.rejected.length, 1);
    // The callLegUpdate (correlatorIndex 2, position 3 in the POST) gets a time with offset +20:00.
    const target = b.records[2]!;
    poison(target, (r) => {
      r.time = '2026-11-21T09:00:00+20:00';
      r.raw['@time'] = r.time;
    });

    await completed(await enqueue(b));
    assert.deepEqual(await stored(session), [0, 1, 3, 4]);
    const rows = await quarantined(session);
    assert.deepEqual(
      rows.map((r) => r.position),
      [2, 3],
    );
    assert.match(rows[0]!.reason, /time "never"/);
    assert.match(rows[1]!.reason, /^Postgres refused the record: time zone displacement out of range: .*\[SQLSTATE 22009\]$/);
    assert.deepEqual(rows[1]!.raw, target.raw);
    // The leg is built from the records that were stored: it started and ended, it never connected.
    const [leg] = await db.select().from(callLegs).where(eq(callLegs.id, ids.leg));
    assert.ok(leg?.endedAt);
    assert.equal(leg?.connectedAt, null);

    // CMS re-sends the POST: nothing is stored or quarantined twice.
    await completed(await enqueue(b));
    assert.deepEqual(await stored(session), [0, 1, 3, 4]);
    assert.equal((await quarantined(session)).length, 2);
  });

  test('U+0000 in a value (text and jsonb refuse it): quarantined, shown as U+FFFD, the reason says so', async () => {
    const session = randomUUID();
    const b = batch(session, simpleCallRecords());
    const target = b.records[1]!; // the callStart
    poison(target, (r) => {
      (r.raw.call as Record<string, unknown>).name = 'Team\u0000Room';
    });
    await completed(await enqueue(b));
    assert.deepEqual(await stored(session), [0, 2, 3, 4]);
    const [row] = await quarantined(session);
    assert.equal(row?.position, 1);
    assert.match(
      row?.reason ?? '',
      /^Postgres refused the record: .*\[SQLSTATE 22P05\] \(characters that cannot be stored.* are shown as U\+FFFD\)$/,
    );
    assert.deepEqual((row?.raw as { call?: unknown } | undefined)?.call, { ...(target.raw.call as object), name: 'Team\uFFFDRoom' });
  });

  test('an id too long for its index: quarantined with the reason', async () => {
    const session = randomUUID();
    const b = batch(session, simpleCallRecords());
    poison(b.records[0]!, (r) => {
      // Random, so that compression cannot bring the index entry under the limit.
      r.callLegId = Array.from({ length: 300 }, () => randomUUID()).join('');
    });
    await completed(await enqueue(b));
    assert.deepEqual(await stored(session), [1, 2, 3, 4]);
    const [row] = await quarantined(session);
    assert.match(row?.reason ?? '', /^Postgres refused the record: index row .*\[SQLSTATE 54000\]$/);
  });

  test('in a job with other batches (one group commit): the other batches are stored, the job completes', async () => {
    const [s1, s2, s3] = [randomUUID(), randomUUID(), randomUUID()];
    const poisoned = batch(s2, simpleCallRecords());
    poison(poisoned.records[4]!, (r) => {
      r.time = '2026-11-21T09:30:01-17:00';
    });
    await completed(await enqueue(batch(s1, simpleCallRecords()), poisoned, batch(s3, simpleCallRecords())));
    assert.deepEqual(await stored(s1), [0, 1, 2, 3, 4]);
    assert.deepEqual(await stored(s2), [0, 1, 2, 3]);
    assert.deepEqual(await stored(s3), [0, 1, 2, 3, 4]);
    const [row] = await quarantined(s2);
    assert.equal(row?.position, 4);
    assert.match(row?.reason ?? '', /SQLSTATE 22009/);
  });
});

describe('the parser and Postgres agree', () => {
  test('every record time the parser accepts, Postgres stores', async () => {
    const times: string[] = [];
    for (const offset of ['Z', '+00:00', '+15:59', '-15:59', '+16:00', '-16:00', '+20:00', '+23:59', '-23:59']) {
      for (const clock of ['00:00:00', '23:59:59', '23:59:60', '23:59:60.0', '23:59:60.5', '23:59:59.999999999', '12:00:00.1234567891']) {
        for (const date of ['0001-01-01', '2016-12-31', '2024-02-29', '9999-12-31']) times.push(`${date}T${clock}${offset}`);
      }
    }
    const records = times.map((time, i) => ({ type: 'callEnd', correlatorIndex: i, time, body: `<call id="c${i}"/>` }));
    const parsed = parseCdrBatch(recordsXml({ session: 's', records }));
    assert.ok(parsed.records.length >= 50 && parsed.rejected.length >= 50, 'both sides of the edge are tried');
    const refused: string[] = [];
    for (const { time } of parsed.records) {
      try {
        await db.$client.query('SELECT $1::timestamptz', [time]);
      } catch (err) {
        refused.push(`${time}: ${(err as Error).message}`);
      }
    }
    assert.deepEqual(refused, []);
  });
});
