import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { testDatabase } from '../helpers/infra.ts';
import { bearer, insertRecords, type RecordSpec, recordsApiConfig, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';

interface ApiRecord {
  id: number;
  session: string;
  correlatorIndex: number;
  [key: string]: unknown;
}

interface RecordsPage {
  records: ApiRecord[];
  nextCursor: string | null;
}

/** CMS identifies calls and legs by GUID (the API refuses other ids); numbered ones keep the fixtures readable. */
const callGuid = (n: number) => `ca110000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const legGuid = (n: number) => `1e900000-0000-4000-8000-${String(n).padStart(12, '0')}`;

const TYPES = ['callStart', 'callLegStart', 'callLegUpdate', 'callLegEnd', 'callEnd'];
const BASE_TIME = Date.parse('2024-03-01T08:00:00Z');
const TOTAL = 1234;

/** 1,234 records over two sessions and two nodes, one second apart, with calls, legs and correlators cycling. */
function dataset(): RecordSpec[] {
  const specs: RecordSpec[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const session = i < 700 ? 'session-a' : 'session-b';
    const type = TYPES[i % TYPES.length] as string;
    const call = i % 7;
    specs.push({
      session,
      correlatorIndex: session === 'session-a' ? i : i - 700,
      type,
      time: new Date(BASE_TIME + i * 1000).toISOString().replace('.000Z', 'Z'),
      node: i % 2 === 0 ? 'cb1' : 'cb2',
      callBridge: i % 2 === 0 ? 'bridge-guid-1' : 'bridge-guid-2',
      callId: callGuid(call),
      callLegId: type.startsWith('callLeg') ? legGuid(i % 11) : null,
      callCorrelator: `correlator-${call % 3}`,
      fields: type === 'callLegStart' ? { remoteParty: `user${i}@example.com`, direction: 'incoming' } : {},
    });
  }
  // A few records of other shapes among them: a recording, a leg end with quality alarms, a type CMS may add later.
  specs[5] = { ...specs[5]!, type: 'recordingStart', objectId: 'rec-1', fields: { path: '/recordings/x', callLeg: legGuid(5) } };
  specs[6] = { ...specs[6]!, type: 'meetingStart', element: 'meeting', objectId: 'meeting-1', fields: { name: 'Board' } };
  specs[8] = {
    ...specs[8]!,
    fields: {
      reason: 'remoteTeardown',
      alarm: [
        { '@type': 'packetLoss', '@durationPercentage': '0.1' },
        { '@type': 'excessiveJitter', '@durationPercentage': '0.0' },
      ],
      rxVideo: { codec: 'h264', maxSizeWidth: '1280' },
    },
  };
  return specs;
}

const key = (r: { session: string; correlatorIndex: number }) => `${r.session}/${r.correlatorIndex}`;

// Top level, not in before(): the helpers register their clean-up with after(), which must belong to the file.
const { url: databaseUrl, db } = await testDatabase();
const app: FastifyInstance = await startRecordsApi(db, { config: recordsApiConfig(databaseUrl) });
const specs = dataset();
await insertRecords(db, specs);

async function get(url: string, token: string = TOKENS.viewer) {
  return app.inject({ method: 'GET', url, headers: bearer(token) });
}

/** Follows nextCursor from the first page to the last. */
async function fetchAll(query: string): Promise<{ records: ApiRecord[]; pages: number }> {
  const records: ApiRecord[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const url: string = `/api/v1/records?${query}${cursor ? `&cursor=${cursor}` : ''}`;
    const res = await get(url);
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json<RecordsPage>();
    records.push(...page.records);
    cursor = page.nextCursor;
    pages++;
    assert.ok(pages <= TOTAL, 'pagination does not end');
  } while (cursor !== null);
  return { records, pages };
}

function assertSameRecords(actual: ApiRecord[], expected: RecordSpec[]): void {
  assert.equal(actual.length, expected.length);
  assert.deepEqual(new Set(actual.map(key)), new Set(expected.map(key)));
}

describe('GET /api/v1/records pagination', () => {
  test('order=asc at limit 100 returns every record exactly once in arrival order and ends with nextCursor null', async () => {
    const { records, pages } = await fetchAll('limit=100&order=asc');
    assert.equal(pages, 13);
    assertSameRecords(records, specs);
    assert.deepEqual(records.map(key), specs.map(key));
    for (let i = 1; i < records.length; i++) assert.ok((records[i] as ApiRecord).id > (records[i - 1] as ApiRecord).id);
  });

  test('order=desc at limit 100 returns every record exactly once newest first and ends with nextCursor null', async () => {
    const { records, pages } = await fetchAll('limit=100&order=desc');
    assert.equal(pages, 13);
    assert.deepEqual(records.map(key), specs.map(key).reverse());
  });

  test('without parameters the first page holds the 100 oldest records', async () => {
    const res = await get('/api/v1/records');
    assert.equal(res.statusCode, 200);
    const page = res.json<RecordsPage>();
    assert.deepEqual(page.records.map(key), specs.slice(0, 100).map(key));
    assert.equal(typeof page.nextCursor, 'string');
  });

  test('a page that ends exactly at the last matching record has nextCursor null', async () => {
    const matching = specs.filter((s) => s.callId === callGuid(3));
    const page = (await get(`/api/v1/records?limit=${matching.length}&callId=${callGuid(3)}&order=desc`)).json<RecordsPage>();
    assert.equal(page.records.length, matching.length);
    assert.equal(page.nextCursor, null);
  });

  test('a page one short of the end has a nextCursor leading to the last matching record', async () => {
    const matching = specs.filter((s) => s.callId === callGuid(3));
    const limit = matching.length - 1;
    const first = (await get(`/api/v1/records?limit=${limit}&callId=${callGuid(3)}`)).json<RecordsPage>();
    assert.equal(first.records.length, limit);
    assert.equal(typeof first.nextCursor, 'string');
    const rest = (await get(`/api/v1/records?limit=${limit}&callId=${callGuid(3)}&cursor=${first.nextCursor}`)).json<RecordsPage>();
    assert.deepEqual(rest.records.map(key), [key(matching.at(-1) as RecordSpec)]);
    assert.equal(rest.nextCursor, null);
  });
});

describe('GET /api/v1/records filters', () => {
  const filters: { name: string; query: string; matches: (s: RecordSpec) => boolean }[] = [
    { name: 'type', query: 'type=callLegEnd', matches: (s) => s.type === 'callLegEnd' },
    { name: 'callId', query: `callId=${callGuid(3)}`, matches: (s) => s.callId === callGuid(3) },
    { name: 'callLegId', query: `callLegId=${legGuid(4)}`, matches: (s) => s.callLegId === legGuid(4) },
    { name: 'callCorrelator', query: 'callCorrelator=correlator-1', matches: (s) => s.callCorrelator === 'correlator-1' },
    { name: 'session', query: 'session=session-b', matches: (s) => s.session === 'session-b' },
    { name: 'node', query: 'node=cb2', matches: (s) => s.node === 'cb2' },
  ];
  for (const filter of filters) {
    test(`${filter.name} returns exactly the matching records across pages`, async () => {
      const expected = specs.filter(filter.matches);
      assert.ok(expected.length > 37 && expected.length < specs.length, 'the fixture exercises this filter');
      const { records } = await fetchAll(`limit=37&${filter.query}`);
      assertSameRecords(records, expected);
    });
  }

  test('filters combine with AND', async () => {
    const expected = specs.filter((s) => s.type === 'callLegStart' && s.node === 'cb1' && s.session === 'session-a');
    const { records } = await fetchAll('type=callLegStart&node=cb1&session=session-a');
    assertSameRecords(records, expected);
  });

  test('from is inclusive and to is exclusive on the record time', async () => {
    const from = new Date(BASE_TIME + 100 * 1000).toISOString();
    const to = new Date(BASE_TIME + 250 * 1000).toISOString();
    const { records } = await fetchAll(`from=${from}&to=${to}`);
    assert.deepEqual(records.map(key), specs.slice(100, 250).map(key));
  });

  test('from and to accept RFC 3339 offsets other than Z', async () => {
    // 09:00:10+01:00 is 08:00:10Z: records 10 onwards.
    const { records } = await fetchAll(
      `from=${encodeURIComponent('2024-03-01T09:00:10+01:00')}&to=${encodeURIComponent('2024-03-01T09:00:20+01:00')}`,
    );
    assert.deepEqual(records.map(key), specs.slice(10, 20).map(key));
  });

  test('a filter nothing matches answers an empty page with nextCursor null', async () => {
    const res = await get(`/api/v1/records?callId=${callGuid(999)}`);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { records: [], nextCursor: null });
  });
});

describe('GET /api/v1/records record shape', () => {
  test('a record carries its envelope and its own element under Cisco field names', async () => {
    const res = await get('/api/v1/records?limit=2&type=callLegStart');
    const [first] = res.json<RecordsPage>().records;
    const spec = specs.find((s) => s.type === 'callLegStart') as RecordSpec;
    assert.deepEqual(
      { ...first, id: undefined, receivedAt: undefined },
      {
        id: undefined,
        receivedAt: undefined,
        session: 'session-a',
        callBridge: 'bridge-guid-2',
        node: 'cb2',
        type: 'callLegStart',
        time: '2024-03-01T08:00:01Z',
        recordIndex: 2,
        correlatorIndex: 1,
        numPreceedingRecordsMissing: null,
        callId: callGuid(1),
        callLegId: spec.callLegId,
        callCorrelator: 'correlator-1',
        callLeg: { id: spec.callLegId, remoteParty: 'user1@example.com', direction: 'incoming' },
      },
    );
    assert.equal(typeof first?.id, 'number');
    assert.match(String(first?.receivedAt), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  });

  async function firstRecord(query: string): Promise<ApiRecord> {
    const res = await get(`/api/v1/records?limit=1&${query}`);
    return res.json<RecordsPage>().records[0] as ApiRecord;
  }

  test('a recording record shows its recording element with the call leg it names', async () => {
    const record = await firstRecord('type=recordingStart');
    assert.deepEqual(record.recording, { id: 'rec-1', path: '/recordings/x', callLeg: legGuid(5) });
  });

  test('a leg end shows its alarms as an array of objects without "@" and nested elements as objects', async () => {
    const record = await firstRecord(`type=callLegEnd&callLegId=${specs[8]?.callLegId}`);
    assert.deepEqual(record.callLeg, {
      id: specs[8]?.callLegId,
      reason: 'remoteTeardown',
      alarm: [
        { type: 'packetLoss', durationPercentage: '0.1' },
        { type: 'excessiveJitter', durationPercentage: '0.0' },
      ],
      rxVideo: { codec: 'h264', maxSizeWidth: '1280' },
    });
  });

  test('a record type from a later CMS release shows its element under its own name', async () => {
    const record = await firstRecord('type=meetingStart');
    assert.equal(record.type, 'meetingStart');
    assert.deepEqual(record.meeting, { id: 'meeting-1', name: 'Board' });
  });
});

describe('GET /api/v1/records invalid parameters', () => {
  const cases: { name: string; query: string; names: string }[] = [
    { name: 'limit=0', query: 'limit=0', names: 'querystring/limit' },
    { name: 'limit=501', query: 'limit=501', names: 'querystring/limit' },
    { name: 'limit=ten', query: 'limit=ten', names: 'querystring/limit' },
    { name: 'order=sideways', query: 'order=sideways', names: 'querystring/order' },
    { name: 'from=notadate', query: 'from=notadate', names: 'querystring/from' },
    { name: 'to without a time zone', query: 'to=2024-03-01T08:00:00', names: 'querystring/to' },
    { name: 'cursor=garbage', query: 'cursor=garbage', names: 'querystring/cursor' },
    { name: 'a cursor with characters base64url does not use', query: 'cursor=%7B%7D', names: 'querystring/cursor' },
    { name: 'an unknown parameter', query: 'colour=blue', names: 'querystring/colour' },
  ];
  for (const c of cases) {
    test(`${c.name} answers 400 problem+json naming ${c.names}`, async () => {
      const res = await get(`/api/v1/records?${c.query}`);
      assert.equal(res.statusCode, 400);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const problem = res.json<{ status: number; detail: string }>();
      assert.equal(problem.status, 400);
      assert.ok(problem.detail.includes(c.names), problem.detail);
    });
  }

  test('a cursor with a tampered position answers 400 naming cursor', async () => {
    const tampered = Buffer.from(JSON.stringify({ v: 1, k: 'records', o: 'asc', id: 'DROP TABLE' })).toString('base64url');
    const res = await get(`/api/v1/records?cursor=${tampered}`);
    assert.equal(res.statusCode, 400);
    assert.match(res.json<{ detail: string }>().detail, /querystring\/cursor/);
  });

  test('a cursor sent with the other order answers 400 naming cursor', async () => {
    const first = await get('/api/v1/records?limit=10&order=desc');
    const { nextCursor } = first.json<RecordsPage>();
    const res = await get(`/api/v1/records?limit=10&order=asc&cursor=${nextCursor}`);
    assert.equal(res.statusCode, 400);
    assert.match(res.json<{ detail: string }>().detail, /querystring\/cursor was issued for order=desc/);
  });
});
