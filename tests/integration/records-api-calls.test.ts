import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { callLegs, calls } from '@cms/db';
import { testDatabase } from '../helpers/infra.ts';
import { bearer, insertCallLegs, insertCalls, recordsApiConfig, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';

type CallRow = typeof calls.$inferInsert;
type LegRow = typeof callLegs.$inferInsert;

interface ApiCall {
  id: string;
  startedAt: string | null;
  endedAt: string | null;
  legCount: number;
  activeLegCount: number;
  [key: string]: unknown;
}

interface CallsPage {
  calls: ApiCall[];
  nextCursor: string | null;
}

const BASE = Date.parse('2024-03-01T08:00:00Z');
const COUNT = 60;

/**
 * 60 calls: started three at a time at the same microsecond (so ties are broken by id across page
 * boundaries), ids not in start order, every fourth ended, the last six placeholders not started yet.
 */
const fixtureCalls: CallRow[] = Array.from({ length: COUNT }, (_, i) => {
  const started = i < COUNT - 6 ? new Date(BASE + Math.floor(i / 3) * 1000).toISOString().replace('.000Z', '.000123Z') : null;
  return {
    id: `call-${String((i * 37) % COUNT).padStart(2, '0')}`,
    node: i % 2 === 0 ? 'cb1' : 'cb2',
    callBridge: i % 2 === 0 ? 'bridge-guid-1' : 'bridge-guid-2',
    name: started ? `Meeting ${i}` : null,
    callType: started ? 'coSpace' : null,
    coSpace: i % 3 === 0 ? 'space-a' : i % 3 === 1 ? 'space-b' : null,
    callCorrelator: `correlator-${i % 5}`,
    startedAt: started,
    endedAt: started && i % 4 === 0 ? new Date(Date.parse(started) + 600_000).toISOString() : null,
  };
});

/** Call i has i % 4 legs; the first of them has ended. */
const fixtureLegs: LegRow[] = fixtureCalls.flatMap((call, i) =>
  Array.from({ length: i % 4 }, (_, j) => ({
    id: `${call.id}-leg-${j}`,
    callId: call.id,
    startedAt: new Date(BASE + i * 1000 + j).toISOString(),
    endedAt: j === 0 ? new Date(BASE + i * 1000 + 5000).toISOString() : null,
  })),
);

/** The documented order: startedAt newest first, not started last, then id. */
function expectedOrder(rows: CallRow[]): string[] {
  return [...rows]
    .sort((a, b) => {
      const [x, y] = [a.startedAt ?? null, b.startedAt ?? null];
      if (x !== y) {
        if (x === null) return 1;
        if (y === null) return -1;
        return x < y ? 1 : -1;
      }
      return a.id < b.id ? -1 : 1;
    })
    .map((c) => c.id);
}

const MEETING: CallRow = {
  id: '46d49cb4-8171-4abc-97f5-b88035b1da0a',
  node: 'cb3',
  callBridge: '158ba4f7-70eb-4a35-982c-71d4f1674277',
  session: 'a865433a-4926-4549-a701-9bb5b93c75e6',
  name: 'test564_1',
  ownerName: '',
  callType: 'coSpace',
  coSpace: '50605235-60cf-484a-9fa1-278ad0646243',
  tenant: null,
  cdrTag: 'tag-1',
  callCorrelator: '5f3300c5-ca67-40e0-a503-91baec70dbbe',
  startedAt: '2015-07-23T07:32:55Z',
  endedAt: '2015-07-23T08:38:07Z',
  callLegsCompleted: 2,
  callLegsMaxActive: 2,
  durationSeconds: 3912,
  endpointRecorded: null,
};

const MEETING_LEGS: LegRow[] = [
  {
    id: 'aa7c3c54-07d6-4af3-b853-a25fe676e554',
    callId: MEETING.id,
    node: 'cb3',
    callBridge: MEETING.callBridge,
    seq: 7,
    displayName: 'Guest',
    remoteParty: 'guest',
    remoteAddress: '198.51.100.7',
    type: 'acano',
    subType: 'webApp',
    direction: 'incoming',
    guestConnection: true,
    groupId: 'aa7c3c54-07d6-4af3-b853-a25fe676e554',
    state: 'connected',
    inIvr: false,
    deactivated: false,
    startedAt: '2015-07-23T07:33:10Z',
    connectedAt: '2015-07-23T07:33:11Z',
    endedAt: '2015-07-23T08:38:07Z',
    endReason: 'remoteTeardown',
    durationSeconds: 3897,
    activatedDuration: 3897,
    encryptedMedia: true,
    quality: {
      mediaUsagePercentages: { mainVideoViewer: '99.9' },
      alarm: { '@type': 'packetLoss', '@durationPercentage': '0.1' },
      rxAudio: { codec: 'opus' },
    },
  },
  {
    id: 'fc9c85ca-8c41-4a1a-9252-b16977d1e4e1',
    callId: MEETING.id,
    node: 'cb3',
    displayName: 'sipclient1',
    remoteParty: '0701234567@example.com',
    remoteAddress: 'sipclient1@example.com',
    localAddress: 'access1@127.0.0.1',
    type: 'sip',
    direction: 'incoming',
    groupId: '18da80f3-8a71-4255-aa90-e1677b99b588',
    sipCallId: 'b8a81da5-c24c-43db-ba58-742f587faec8',
    state: 'connected',
    deactivated: true,
    startedAt: '2015-07-23T07:32:55Z',
  },
];

/** Cisco's documented flow: the leg names its call before the callStart arrives; the projection made a placeholder row. */
const PLACEHOLDER: CallRow = { id: '9e4d9a44-0000-4000-8000-00000000beef', node: 'cb3' };
const EARLY_LEG: LegRow = {
  id: 'early-leg',
  callId: PLACEHOLDER.id,
  node: 'cb3',
  remoteParty: 'early@example.com',
  startedAt: '2015-07-23T07:32:55Z',
};

const allCalls = [...fixtureCalls, MEETING, PLACEHOLDER];

const { url, db } = await testDatabase();
const app = await startRecordsApi(db, { config: recordsApiConfig(url) });
await insertCalls(db, allCalls);
await insertCallLegs(db, [...fixtureLegs, ...MEETING_LEGS, EARLY_LEG]);

async function get(path: string) {
  return app.inject({ method: 'GET', url: path, headers: bearer(TOKENS.viewer) });
}

async function fetchAll(query: string): Promise<{ calls: ApiCall[]; pages: number }> {
  const found: ApiCall[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await get(`/api/v1/calls?${query}${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(res.statusCode, 200, res.body);
    const page = res.json<CallsPage>();
    found.push(...page.calls);
    cursor = page.nextCursor;
    pages++;
    assert.ok(pages <= allCalls.length, 'pagination does not end');
  } while (cursor !== null);
  return { calls: found, pages };
}

describe('GET /api/v1/calls', () => {
  test('pages at limit 7 return every call exactly once, newest start first, not started last, ties by id', async () => {
    const { calls: listed, pages } = await fetchAll('limit=7');
    assert.equal(pages, Math.ceil(allCalls.length / 7));
    assert.deepEqual(
      listed.map((c) => c.id),
      expectedOrder(allCalls),
    );
  });

  test('without parameters the first page holds 50 calls and a nextCursor', async () => {
    const page = (await get('/api/v1/calls')).json<CallsPage>();
    assert.deepEqual(
      page.calls.map((c) => c.id),
      expectedOrder(allCalls).slice(0, 50),
    );
    assert.equal(typeof page.nextCursor, 'string');
  });

  const filters: { name: string; query: string; matches: (c: CallRow) => boolean }[] = [
    { name: 'active=true', query: 'active=true', matches: (c) => !c.endedAt },
    { name: 'active=false', query: 'active=false', matches: (c) => Boolean(c.endedAt) },
    { name: 'callCorrelator', query: 'callCorrelator=correlator-2', matches: (c) => c.callCorrelator === 'correlator-2' },
    { name: 'node', query: 'node=cb2', matches: (c) => c.node === 'cb2' },
    { name: 'coSpace', query: 'coSpace=space-a', matches: (c) => c.coSpace === 'space-a' },
  ];
  for (const filter of filters) {
    test(`${filter.name} returns exactly the matching calls across pages`, async () => {
      const expected = expectedOrder(allCalls.filter(filter.matches));
      assert.ok(expected.length > 5 && expected.length < allCalls.length, 'the fixture exercises this filter');
      const { calls: listed } = await fetchAll(`limit=5&${filter.query}`);
      assert.deepEqual(
        listed.map((c) => c.id),
        expected,
      );
    });
  }

  test('pages whose end falls at, just before or just after the last started call list every call once (the not-started tail follows on the same page)', async () => {
    const started = allCalls.filter((c) => c.startedAt).length;
    const notStarted = allCalls.length - started;
    assert.ok(started > 10 && notStarted > 2, 'the fixture has started and not-started calls');
    // started: the first page ends exactly at the last started call; started - 1: the second page holds the last
    // started call and the not-started ones; started + 1: the first page reaches one into the tail; 2 to 8: a later
    // page ends exactly at the last started call (the limits dividing `started`) or straddles it (the others).
    const limits = [started, started - 1, started + 1, 2, 3, 4, 5, 6, 7, 8];
    assert.ok(
      limits.some((l) => l < started && started % l === 0),
      'a page after the first ends exactly at the last started call',
    );
    for (const limit of limits) {
      const pages: ApiCall[][] = [];
      let cursor: string | null = null;
      do {
        const res = await get(`/api/v1/calls?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(res.statusCode, 200, res.body);
        const page = res.json<CallsPage>();
        pages.push(page.calls);
        cursor = page.nextCursor;
        assert.ok(pages.length <= allCalls.length, 'pagination does not end');
      } while (cursor !== null);
      assert.deepEqual(
        pages.flat().map((c) => c.id),
        expectedOrder(allCalls),
        `limit ${limit}`,
      );
      assert.deepEqual(
        pages.map((p) => p.length),
        Array.from({ length: Math.ceil(allCalls.length / limit) }, (_, i) => Math.min(limit, allCalls.length - i * limit)),
        `limit ${limit}: full pages, then the rest, and no empty last page`,
      );
    }
  });

  test('each call counts its legs and the legs not ended yet', async () => {
    const { calls: listed } = await fetchAll('limit=500');
    for (const [i, call] of fixtureCalls.entries()) {
      const found = listed.find((c) => c.id === call.id);
      assert.equal(found?.legCount, i % 4, call.id);
      assert.equal(found?.activeLegCount, Math.max(0, (i % 4) - 1), call.id);
    }
  });

  test('call times are RFC 3339 and keep their microseconds', async () => {
    const listed = (await get('/api/v1/calls?limit=1')).json<CallsPage>().calls;
    assert.match(String(listed[0]?.startedAt), /^2024-03-01T08:00:17\.000123Z$/);
  });
});

describe('GET /api/v1/calls/:id', () => {
  test('answers the call with its fields and its legs in start order', async () => {
    const res = await get(`/api/v1/calls/${MEETING.id}`);
    assert.equal(res.statusCode, 200);
    const call = res.json<ApiCall & { legs: Record<string, unknown>[] }>();
    assert.deepEqual(
      { ...call, legs: undefined, updatedAt: undefined },
      {
        ...MEETING,
        startedAt: '2015-07-23T07:32:55Z',
        endedAt: '2015-07-23T08:38:07Z',
        legCount: 2,
        activeLegCount: 1,
        activeBridgeLinkCount: 0,
        meetingKey: MEETING.callCorrelator,
        level: null,
        decisiveLegId: null,
        message: null,
        instances: [],
        levelHistory: [],
        writes: [],
        legs: undefined,
        updatedAt: undefined,
      },
    );
    assert.deepEqual(
      call.legs.map((leg) => leg.id),
      ['fc9c85ca-8c41-4a1a-9252-b16977d1e4e1', 'aa7c3c54-07d6-4af3-b853-a25fe676e554'],
    );
  });

  test('each leg carries its fields, with quality data under Cisco names and alarms as an array', async () => {
    const call = (await get(`/api/v1/calls/${MEETING.id}`)).json<{ legs: Record<string, unknown>[] }>();
    const leg = call.legs.find((l) => l.id === 'aa7c3c54-07d6-4af3-b853-a25fe676e554');
    assert.deepEqual(
      { ...leg, updatedAt: undefined, classification: undefined },
      {
        id: 'aa7c3c54-07d6-4af3-b853-a25fe676e554',
        callId: MEETING.id,
        node: 'cb3',
        callBridge: MEETING.callBridge,
        displayName: 'Guest',
        remoteParty: 'guest',
        remoteAddress: '198.51.100.7',
        localAddress: null,
        type: 'acano',
        subType: 'webApp',
        lyncSubType: null,
        direction: 'incoming',
        guestConnection: true,
        ownerId: null,
        sipCallId: null,
        groupId: 'aa7c3c54-07d6-4af3-b853-a25fe676e554',
        cdrTag: null,
        state: 'connected',
        inIvr: false,
        deactivated: false,
        startedAt: '2015-07-23T07:33:10Z',
        connectedAt: '2015-07-23T07:33:11Z',
        endedAt: '2015-07-23T08:38:07Z',
        endReason: 'remoteTeardown',
        durationSeconds: 3897,
        activatedDuration: 3897,
        encryptedMedia: true,
        quality: {
          mediaUsagePercentages: { mainVideoViewer: '99.9' },
          alarm: [{ type: 'packetLoss', durationPercentage: '0.1' }],
          rxAudio: { codec: 'opus' },
        },
        updatedAt: undefined,
        classification: undefined,
        // Neither the events feed nor polling has shown this (ended) participant live.
        live: null,
      },
    );
  });

  test('a call known only from a leg that arrived first answers its placeholder with that leg', async () => {
    const res = await get(`/api/v1/calls/${PLACEHOLDER.id}`);
    assert.equal(res.statusCode, 200);
    const call = res.json<ApiCall & { legs: Record<string, unknown>[] }>();
    assert.equal(call.name, null);
    assert.equal(call.startedAt, null);
    assert.equal(call.legCount, 1);
    assert.deepEqual(
      call.legs.map((leg) => [leg.id, leg.remoteParty]),
      [['early-leg', 'early@example.com']],
    );
  });

  test('an unknown call id answers 404 problem+json', async () => {
    const res = await get('/api/v1/calls/no-such-call');
    assert.equal(res.statusCode, 404);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.match(res.json<{ detail: string }>().detail, /no-such-call/);
  });
});

describe('GET /api/v1/calls invalid parameters', () => {
  const cases: { name: string; query: string; names: string }[] = [
    { name: 'limit=0', query: 'limit=0', names: 'querystring/limit' },
    { name: 'limit=501', query: 'limit=501', names: 'querystring/limit' },
    { name: 'active=maybe', query: 'active=maybe', names: 'querystring/active' },
    { name: 'cursor=garbage', query: 'cursor=garbage', names: 'querystring/cursor' },
    { name: 'an unknown parameter', query: 'type=callStart', names: 'querystring/type' },
  ];
  for (const c of cases) {
    test(`${c.name} answers 400 naming ${c.names}`, async () => {
      const res = await get(`/api/v1/calls?${c.query}`);
      assert.equal(res.statusCode, 400);
      assert.ok(res.json<{ detail: string }>().detail.includes(c.names), res.body);
    });
  }

  test('a records cursor is not accepted by /calls', async () => {
    const { nextCursor } = (await get('/api/v1/records?limit=1')).json<{ nextCursor: string | null }>();
    const recordsCursor = nextCursor ?? Buffer.from(JSON.stringify({ v: 1, k: 'records', o: 'asc', id: 1 })).toString('base64url');
    const res = await get(`/api/v1/calls?cursor=${recordsCursor}`);
    assert.equal(res.statusCode, 400);
    assert.match(res.json<{ detail: string }>().detail, /querystring\/cursor/);
  });

  test('a calls cursor with an impossible start time answers 400 naming cursor', async () => {
    const tampered = Buffer.from(JSON.stringify({ v: 1, k: 'calls', s: '2024-02-30T00:00:00Z', id: 'call-01' })).toString('base64url');
    const res = await get(`/api/v1/calls?cursor=${tampered}`);
    assert.equal(res.statusCode, 400);
    assert.match(res.json<{ detail: string }>().detail, /querystring\/cursor/);
  });
});
