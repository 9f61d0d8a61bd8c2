import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testDatabase } from '../helpers/infra.ts';
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
