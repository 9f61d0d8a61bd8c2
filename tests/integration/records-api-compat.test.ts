import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '@cms/config';
import { cdrRecords } from '@cms/db';
import { createLogger } from '@cms/observability';
import { sql } from 'drizzle-orm';
import { buildIngest } from '../../services/cdr-ingest/src/app.ts';
import { buildPolicyWorker } from '../../services/policy-worker/src/app.ts';
import { cdrFixture, jsonFixture } from '../fixtures/cdr/index.ts';
import { eventually, onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';
import {
  bearer,
  cdrRecordRow,
  insertRecords,
  type RecordSpec,
  recordsApiConfig,
  startRecordsApi,
  TOKENS,
} from '../helpers/records-fixtures.ts';

// cdr-receiver-db's users parse exactly this: 20 per page, newest first, xmltodict keys, {"records": 0} past the end.
const COUNT = 45;
const specs: RecordSpec[] = Array.from(
  { length: COUNT },
  (_, i): RecordSpec => ({
    session: 'a865433a-4926-4549-a701-9bb5b93c75e6',
    correlatorIndex: i,
    type: i % 2 === 0 ? 'callLegStart' : 'callLegEnd',
    time: `2015-07-23T07:32:${String(i).padStart(2, '0')}Z`,
    callLegId: `fc9c85ca-8c41-4a1a-9252-${String(i).padStart(12, '0')}`,
    fields: i % 2 === 0 ? { remoteParty: '0701234567@example.com', type: 'sip' } : { reason: 'remoteTeardown', durationSeconds: '12' },
  }),
);

const { url, db } = await testDatabase();
const app = await startRecordsApi(db, { config: recordsApiConfig(url) });
await insertRecords(db, specs);

async function page(n: number | string) {
  return app.inject({ method: 'GET', url: `/api/v1/records/${n}`, headers: bearer(TOKENS.viewer) });
}

test('page 1 holds the 20 newest records as stored xmltodict elements', async () => {
  const res = await page(1);
  assert.equal(res.statusCode, 200);
  const expected = specs
    .slice(-20)
    .reverse()
    .map((s) => cdrRecordRow(s).raw);
  assert.deepEqual(res.json(), { records: expected });
});

test('records keep xmltodict keys and text values exactly as CMS sent them', async () => {
  const [newest] = (await page(1)).json<{ records: Record<string, unknown>[] }>().records;
  assert.deepEqual(newest, {
    '@type': 'callLegStart',
    '@time': '2015-07-23T07:32:44Z',
    '@recordIndex': '45',
    '@correlatorIndex': '44',
    callLeg: { '@id': 'fc9c85ca-8c41-4a1a-9252-000000000044', remoteParty: '0701234567@example.com', type: 'sip' },
  });
});

test('the last page holds the oldest records that remain', async () => {
  const res = await page(3);
  assert.equal(res.statusCode, 200);
  const records = res.json<{ records: Record<string, unknown>[] }>().records;
  assert.deepEqual(
    records.map((r) => r['@correlatorIndex']),
    ['4', '3', '2', '1', '0'],
  );
});

test('a page past the end answers {"records": 0} with 200', async () => {
  const res = await page(4);
  assert.equal(res.statusCode, 200);
  assert.equal(res.body, '{"records":0}');
});

for (const bad of ['0', '-1', 'abc', '1.5']) {
  test(`page ${bad} answers 400 naming page`, async () => {
    const res = await page(bad);
    assert.equal(res.statusCode, 400);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.match(res.json<{ detail: string }>().detail, /params\/page/);
  });
}

test('the compatible endpoint needs a token like every /api route', async () => {
  const res = await app.inject({ method: 'GET', url: '/api/v1/records/1' });
  assert.equal(res.statusCode, 401);
});

describe('real CDR XML through ingest and the worker, served as cdr-receiver-db served it', () => {
  // What xmltodict.parse gives for each <record> of these samples (tests/fixtures/cdr/xmltodict-records.py, run
  // with Python's xmltodict): cdr-receiver-db stored and served exactly that.
  const expectedByFile = jsonFixture('records-api-compat.xmltodict.json') as Record<string, Record<string, unknown>[]>;
  const INGEST_TOKEN = 'compat-test-ingest-token-0123456789';

  test('every record of the samples, POSTed to the receiver, comes back from /api/v1/records/1 as xmltodict made it', async () => {
    const database = await testDatabase();
    const redis = await testRedis();
    const config = loadConfig({
      env: {},
      overrides: {
        log: { level: 'silent' },
        redis: { url: redis.url },
        queue: { prefix: redis.prefix },
        database: { url: database.url },
        ingest: { token: INGEST_TOKEN },
        // The samples are from 2015: past the default retention (400 days) they land in the default partition, and
        // the worker's start-up maintenance pass deletes expired rows there, racing the POSTs below.
        storage: { retentionDays: 36_500 },
      },
    });
    const silent = createLogger('compat-test', 'silent');
    const ingest = await buildIngest({ config, log: silent });
    const worker = await buildPolicyWorker({ config, db: database.db, log: silent });
    onTestFileEnd(async () => {
      await ingest.close();
      await worker.close();
    });
    const api = await startRecordsApi(database.db, { config: recordsApiConfig(database.url) });
    const stored = async () => (await database.db.select({ n: sql<number>`count(*)::int` }).from(cdrRecords))[0]?.n ?? 0;

    // One file at a time, each stored before the next, so "newest first" has one right answer.
    let total = 0;
    for (const [file, records] of Object.entries(expectedByFile)) {
      const res = await ingest.app.inject({
        method: 'POST',
        url: `/cdr/cms1?token=${INGEST_TOKEN}`,
        payload: cdrFixture(file),
        headers: { 'content-type': 'text/xml' },
      });
      assert.equal(res.statusCode, 200, `${file}: ${res.body}`);
      total += records.length;
      await eventually(async () => (await stored()) === total, { what: `the records of ${file} stored` });
    }
    assert.ok(total > 10 && total <= 20, 'every record fits on page 1');

    const res = await api.inject({ method: 'GET', url: '/api/v1/records/1', headers: bearer(TOKENS.viewer) });
    assert.equal(res.statusCode, 200);
    const expected = Object.values(expectedByFile).flat().reverse();
    // Same keys, values, nesting and array order. Not the same key order: raw is jsonb, which keeps an object's
    // keys in its own order, where cdr-receiver-db served its stored JSON text in document order.
    assert.deepEqual(res.json(), { records: expected });
    assert.equal((await api.inject({ method: 'GET', url: '/api/v1/records/2', headers: bearer(TOKENS.viewer) })).body, '{"records":0}');
  });
});
