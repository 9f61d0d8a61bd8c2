import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { callLegs, calls } from '@cms/db';
import { testDatabase } from '../helpers/infra.ts';
import {
  bearer,
  insertCallLegs,
  insertCallMessages,
  insertCalls,
  insertCmsWrites,
  insertLevelChanges,
  insertMeetings,
  insertRecords,
  recordsApiConfig,
  startRecordsApi,
  TOKENS,
} from '../helpers/records-fixtures.ts';

type CallRow = typeof calls.$inferInsert;
type LegRow = typeof callLegs.$inferInsert;

interface Classification {
  counts: boolean;
  why: string;
  level: number;
  rule: string;
  matched: string | null;
  host: string | null;
  address: string | null;
}

interface ApiLeg {
  id: string;
  callId: string | null;
  classification: Classification;
  [key: string]: unknown;
}

interface ApiCall {
  id: string;
  meetingKey: string;
  level: number | null;
  message: Record<string, unknown> | null;
  [key: string]: unknown;
}

interface ApiCallDetail extends ApiCall {
  decisiveLegId: string | null;
  instances: Record<string, unknown>[];
  legs: ApiLeg[];
  levelHistory: { id: number; at: string; oldLevel: number | null; newLevel: number | null; causeLegId: string | null; reason: unknown }[];
  writes: Record<string, unknown>[];
}

interface ApiMeeting {
  meetingKey: string;
  level: number | null;
  decisiveLegId: string | null;
  updatedAt: string | null;
  active: boolean;
  [key: string]: unknown;
}

interface ApiMeetingDetail extends ApiMeeting {
  instances: Record<string, unknown>[];
  participants: ApiLeg[];
  levelHistory: ApiCallDetail['levelHistory'];
}

const POLICY = { secureDomains: ['secure.example'], internalDomains: ['corp.example', '10.0.0.0/8'] };

const BRIDGE_1 = '11111111-1111-4111-8111-111111111111';
const BRIDGE_2 = '22222222-2222-4222-8222-222222222222';

/** Meeting A: one space spread over two Call Bridges (one callCorrelator, one call id per bridge). */
const A_CB1: CallRow = {
  id: 'a-cb1',
  node: 'cb1',
  callBridge: BRIDGE_1,
  name: 'Board meeting',
  coSpace: 'space-board',
  callCorrelator: 'corr-a',
  startedAt: '2024-05-01T10:00:00Z',
};
const A_CB2: CallRow = { ...A_CB1, id: 'a-cb2', node: 'cb2', callBridge: BRIDGE_2, startedAt: '2024-05-01T10:00:05Z' };
/** Meeting B: a call without callCorrelator is its own meeting. */
const B_SOLO: CallRow = { id: 'b-solo', node: 'cb1', callBridge: BRIDGE_1, name: 'Solo', startedAt: '2024-05-01T09:00:00Z' };
/** Meeting C: ended, level 2. */
const C_CB1: CallRow = {
  id: 'c-cb1',
  node: 'cb1',
  callBridge: BRIDGE_1,
  name: 'Ended',
  callCorrelator: 'corr-c',
  startedAt: '2024-05-01T08:00:00Z',
  endedAt: '2024-05-01T08:30:00Z',
};
/** Meeting D: the policy has not decided a level yet. */
const D_NEW: CallRow = { id: 'd-new', node: 'cb2', callBridge: BRIDGE_2, callCorrelator: 'corr-d', startedAt: '2024-05-01T07:00:00Z' };
/** An empty callCorrelator counts as none. */
const E_EMPTY: CallRow = { id: 'e-empty', node: 'cb2', callCorrelator: '', startedAt: '2024-05-01T06:00:00Z' };

const connected = { state: 'connected', connectedAt: '2024-05-01T10:00:10Z', startedAt: '2024-05-01T10:00:09Z' } as const;

const LEGS: LegRow[] = [
  { id: 'a1-secure', callId: 'a-cb1', node: 'cb1', type: 'sip', remoteAddress: 'alice@video.secure.example', ...connected },
  {
    id: 'a1-lookalike',
    callId: 'a-cb1',
    node: 'cb1',
    type: 'sip',
    remoteAddress: 'mallory@secure.example.attacker.net',
    ...connected,
    startedAt: '2024-05-01T10:00:11Z',
  },
  {
    id: 'a1-link',
    callId: 'a-cb1',
    node: 'cb1',
    type: 'sip',
    subType: 'distributionLink',
    ...connected,
    startedAt: '2024-05-01T10:00:12Z',
  },
  {
    id: 'a2-guest',
    callId: 'a-cb2',
    node: 'cb2',
    type: 'acano',
    subType: 'webApp',
    guestConnection: true,
    remoteParty: 'guest',
    ...connected,
    startedAt: '2024-05-01T10:00:13Z',
  },
  {
    id: 'a2-internal',
    callId: 'a-cb2',
    node: 'cb2',
    type: 'sip',
    remoteParty: 'bob@corp.example',
    ...connected,
    startedAt: '2024-05-01T10:00:14Z',
    endedAt: '2024-05-01T10:20:00Z',
  },
  {
    id: 'a2-recorder',
    callId: 'a-cb2',
    node: 'cb2',
    type: 'sip',
    remoteParty: 'recorder@secure.example',
    ...connected,
    startedAt: '2024-05-01T10:00:15Z',
  },
  { id: 'b1-secure', callId: 'b-solo', node: 'cb1', type: 'sip', remoteAddress: 'carol@secure.example', ...connected },
];

async function seed(db: Parameters<typeof insertCalls>[0]): Promise<void> {
  await insertCalls(db, [A_CB1, A_CB2, B_SOLO, C_CB1, D_NEW, E_EMPTY]);
  await insertCallLegs(db, LEGS);
  // CMS names a recorder leg only in the recordingStart record's callLeg field.
  await insertRecords(db, [
    {
      session: 'session-cb2',
      correlatorIndex: 1,
      type: 'recordingStart',
      time: '2024-05-01T10:00:15Z',
      node: 'cb2',
      callId: 'a-cb2',
      callLegId: 'a2-recorder',
      objectId: 'recording-1',
      fields: { call: 'a-cb2', callLeg: 'a2-recorder' },
    },
  ]);
  await insertMeetings(db, [
    { meetingKey: 'corr-a', level: 3, decisiveLegId: 'a1-lookalike', updatedAt: '2024-05-01T10:03:00Z' },
    // Same updatedAt as corr-a: the meetings order breaks the tie by meetingKey.
    { meetingKey: 'corr-f', level: 3, decisiveLegId: null, updatedAt: '2024-05-01T10:03:00Z' },
    { meetingKey: 'b-solo', level: 1, decisiveLegId: 'b1-secure', updatedAt: '2024-05-01T09:00:05Z' },
    { meetingKey: 'corr-c', level: 2, decisiveLegId: null, updatedAt: '2024-05-01T08:00:05Z' },
    { meetingKey: 'e-empty', level: null, decisiveLegId: null, updatedAt: '2024-05-01T06:00:05Z' },
  ]);
  await insertLevelChanges(db, [
    {
      meetingKey: 'corr-a',
      at: '2024-05-01T10:00:10Z',
      oldLevel: null,
      newLevel: 1,
      causeLegId: 'a1-secure',
      reason: { level: 1, rule: 'secureDomain', matched: 'secure.example', host: 'video.secure.example' },
    },
    { meetingKey: 'corr-c', at: '2024-05-01T10:00:10Z', oldLevel: null, newLevel: 2, causeLegId: null, reason: null },
    {
      meetingKey: 'corr-a',
      at: '2024-05-01T10:00:11Z',
      oldLevel: 1,
      newLevel: 3,
      causeLegId: 'a1-lookalike',
      reason: { level: 3, rule: 'unlistedDomain', host: 'secure.example.attacker.net' },
    },
    {
      meetingKey: 'corr-a',
      at: '2024-05-01T10:00:13Z',
      oldLevel: 3,
      newLevel: 3,
      causeLegId: 'a2-guest',
      reason: { level: 3, rule: 'guest' },
    },
  ]);
  await insertCallMessages(db, [
    {
      callId: 'a-cb1',
      node: 'cb1',
      meetingKey: 'corr-a',
      level: 3,
      messageText: 'Security Level 3',
      messagePosition: 'bottom',
      messageDuration: 'permanent',
      version: 2,
      desiredAt: '2024-05-01T10:00:11Z',
      appliedVersion: 2,
      appliedAt: '2024-05-01T10:00:12.250Z',
      status: 'applied',
    },
    {
      callId: 'a-cb2',
      node: 'cb2',
      meetingKey: 'corr-a',
      level: 3,
      messageText: 'Security Level 3',
      messagePosition: 'bottom',
      messageDuration: 'permanent',
      version: 2,
      desiredAt: '2024-05-01T10:00:11Z',
      appliedVersion: 1,
      appliedAt: '2024-05-01T10:00:10.500Z',
      status: 'pending',
    },
    {
      callId: 'b-solo',
      node: 'cb1',
      meetingKey: 'b-solo',
      level: 1,
      messageText: 'Security Level 1',
      messagePosition: 'bottom',
      messageDuration: 'permanent',
      status: 'applied',
      appliedVersion: 1,
      appliedAt: '2024-05-01T09:00:06Z',
    },
  ]);
  await insertCmsWrites(db, [
    {
      at: '2024-05-01T10:00:11.100Z',
      node: 'cb1',
      kind: 'callMessage',
      callId: 'a-cb1',
      target: 'a-cb1',
      desiredText: 'Security Level 1',
      version: 1,
      status: 'applied',
      httpStatus: 200,
      attempts: 1,
      latencyMs: 42,
    },
    {
      at: '2024-05-01T10:00:11.200Z',
      node: 'cb2',
      kind: 'callMessage',
      callId: 'a-cb2',
      target: 'a-cb2',
      desiredText: 'Security Level 3',
      version: 2,
      status: 'retrying',
      httpStatus: 503,
      attempts: 2,
      latencyMs: 1500,
    },
    {
      at: '2024-05-01T10:00:12.250Z',
      node: 'cb1',
      kind: 'callMessage',
      callId: 'a-cb1',
      target: 'a-cb1',
      desiredText: 'Security Level 3',
      version: 2,
      status: 'deadLettered',
      httpStatus: 400,
      failureReason: 'parameterError',
      attempts: 3,
      latencyMs: 61,
    },
  ]);
}

const { url, db } = await testDatabase();
const app = await startRecordsApi(db, { config: recordsApiConfig(url, undefined, POLICY) });
await seed(db);

async function get(path: string) {
  return app.inject({ method: 'GET', url: path, headers: bearer(TOKENS.viewer) });
}

async function getJson<T>(path: string): Promise<T> {
  const res = await get(path);
  assert.equal(res.statusCode, 200, res.body);
  return res.json<T>();
}

async function allPages<T>(path: string, key: string, limit: number): Promise<T[]> {
  const found: T[] = [];
  let cursor: string | null = null;
  for (let pages = 0; pages < 50; pages++) {
    const separator = path.includes('?') ? '&' : '?';
    const page: Record<string, unknown> = await getJson(`${path}${separator}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    found.push(...(page[key] as T[]));
    cursor = page.nextCursor as string | null;
    if (cursor === null) return found;
  }
  assert.fail('pagination does not end');
}

function legOf(legs: ApiLeg[], id: string): ApiLeg {
  const leg = legs.find((l) => l.id === id);
  assert.ok(leg, `leg ${id} is listed`);
  return leg;
}

describe('GET /api/v1/calls with security levels', () => {
  test("each call shows its meeting key, its meeting's level and its message", async () => {
    const { calls: listed } = await getJson<{ calls: ApiCall[] }>('/api/v1/calls?limit=100');
    const byId = new Map(listed.map((c) => [c.id, [c.meetingKey, c.level, c.message]]));
    assert.deepEqual(Object.fromEntries(byId), {
      'a-cb2': ['corr-a', 3, { text: 'Security Level 3', status: 'pending' }],
      'a-cb1': ['corr-a', 3, { text: 'Security Level 3', status: 'applied' }],
      'b-solo': ['b-solo', 1, { text: 'Security Level 1', status: 'applied' }],
      'c-cb1': ['corr-c', 2, null],
      'd-new': ['corr-d', null, null],
      'e-empty': ['e-empty', null, null],
    });
  });

  const levels: { level: number; ids: string[] }[] = [
    { level: 3, ids: ['a-cb2', 'a-cb1'] },
    { level: 2, ids: ['c-cb1'] },
    { level: 1, ids: ['b-solo'] },
  ];
  for (const { level, ids } of levels) {
    test(`level=${level} returns exactly the calls of meetings at level ${level}, across pages`, async () => {
      const listed = await allPages<ApiCall>(`/api/v1/calls?level=${level}`, 'calls', 1);
      assert.deepEqual(
        listed.map((c) => c.id),
        ids,
      );
    });
  }

  test('level combines with the other filters', async () => {
    const { calls: listed } = await getJson<{ calls: ApiCall[] }>('/api/v1/calls?level=3&node=cb2');
    assert.deepEqual(
      listed.map((c) => c.id),
      ['a-cb2'],
    );
  });

  test('level=4 answers 400 naming querystring/level', async () => {
    const res = await get('/api/v1/calls?level=4');
    assert.equal(res.statusCode, 400);
    assert.match(res.json<{ detail: string }>().detail, /querystring\/level/);
  });
});

describe('GET /api/v1/calls/:id with security levels', () => {
  test("shows the meeting's level, the decisive participant and the call's message with its applied version", async () => {
    const call = await getJson<ApiCallDetail>('/api/v1/calls/a-cb2');
    assert.equal(call.meetingKey, 'corr-a');
    assert.equal(call.level, 3);
    assert.equal(call.decisiveLegId, 'a1-lookalike');
    assert.deepEqual(call.message, {
      text: 'Security Level 3',
      position: 'bottom',
      duration: 'permanent',
      level: 3,
      version: 2,
      desiredAt: '2024-05-01T10:00:11Z',
      status: 'pending',
      appliedVersion: 1,
      appliedAt: '2024-05-01T10:00:10.5Z',
    });
  });

  test('a secure-domain participant is level 1 naming the list entry and the host it matched', async () => {
    const call = await getJson<ApiCallDetail>('/api/v1/calls/a-cb1');
    assert.deepEqual(legOf(call.legs, 'a1-secure').classification, {
      counts: true,
      why: 'connected',
      level: 1,
      rule: 'secureDomain',
      matched: 'secure.example',
      host: 'video.secure.example',
      address: 'alice@video.secure.example',
    });
  });

  test('a look-alike of a secure domain is level 3 by rule unlistedDomain, matching no entry', async () => {
    const call = await getJson<ApiCallDetail>('/api/v1/calls/a-cb1');
    assert.deepEqual(legOf(call.legs, 'a1-lookalike').classification, {
      counts: true,
      why: 'connected',
      level: 3,
      rule: 'unlistedDomain',
      matched: null,
      host: 'secure.example.attacker.net',
      address: 'mallory@secure.example.attacker.net',
    });
  });

  test('a guest is level 3 by rule guest', async () => {
    const call = await getJson<ApiCallDetail>('/api/v1/calls/a-cb2');
    assert.deepEqual(legOf(call.legs, 'a2-guest').classification, {
      counts: true,
      why: 'connected',
      level: 3,
      rule: 'guest',
      matched: null,
      host: null,
      address: null,
    });
  });

  test('legs that do not count say why: bridge link, ended, recorder', async () => {
    const [cb1, cb2] = await Promise.all([getJson<ApiCallDetail>('/api/v1/calls/a-cb1'), getJson<ApiCallDetail>('/api/v1/calls/a-cb2')]);
    const link = legOf(cb1.legs, 'a1-link').classification;
    const ended = legOf(cb2.legs, 'a2-internal').classification;
    const recorder = legOf(cb2.legs, 'a2-recorder').classification;
    assert.deepEqual([link.counts, link.why], [false, 'distributionLink']);
    assert.deepEqual(
      [ended.counts, ended.why, ended.level, ended.rule, ended.matched],
      [false, 'ended', 2, 'internalDomain', 'corp.example'],
    );
    assert.deepEqual([recorder.counts, recorder.why], [false, 'recorderOrStreamer']);
  });

  test("lists the meeting's other call instance on the other Call Bridge", async () => {
    const call = await getJson<ApiCallDetail>('/api/v1/calls/a-cb1');
    assert.deepEqual(call.instances, [
      {
        id: 'a-cb2',
        node: 'cb2',
        callBridge: BRIDGE_2,
        name: 'Board meeting',
        coSpace: 'space-board',
        startedAt: '2024-05-01T10:00:05Z',
        endedAt: null,
        message: { text: 'Security Level 3', status: 'pending' },
      },
    ]);
  });

  test("lists the meeting's level changes newest first, with the cause and its classification", async () => {
    const call = await getJson<ApiCallDetail>('/api/v1/calls/a-cb1');
    assert.deepEqual(
      call.levelHistory.map((c) => [c.at, c.oldLevel, c.newLevel, c.causeLegId]),
      [
        ['2024-05-01T10:00:13Z', 3, 3, 'a2-guest'],
        ['2024-05-01T10:00:11Z', 1, 3, 'a1-lookalike'],
        ['2024-05-01T10:00:10Z', null, 1, 'a1-secure'],
      ],
    );
    assert.deepEqual(call.levelHistory[1]?.reason, { level: 3, rule: 'unlistedDomain', host: 'secure.example.attacker.net' });
  });

  test("lists this call's CMS writes newest first with CMS's answer, and no other call's", async () => {
    const call = await getJson<ApiCallDetail>('/api/v1/calls/a-cb1');
    assert.deepEqual(
      call.writes.map(({ id: _, ...write }) => write),
      [
        {
          at: '2024-05-01T10:00:12.25Z',
          node: 'cb1',
          kind: 'callMessage',
          target: 'a-cb1',
          desiredText: 'Security Level 3',
          version: 2,
          status: 'deadLettered',
          httpStatus: 400,
          failureReason: 'parameterError',
          attempts: 3,
          latencyMs: 61,
        },
        {
          at: '2024-05-01T10:00:11.1Z',
          node: 'cb1',
          kind: 'callMessage',
          target: 'a-cb1',
          desiredText: 'Security Level 1',
          version: 1,
          status: 'applied',
          httpStatus: 200,
          failureReason: null,
          attempts: 1,
          latencyMs: 42,
        },
      ],
    );
  });

  test('a call without callCorrelator is its own meeting: key is its id, no other instances', async () => {
    const call = await getJson<ApiCallDetail>('/api/v1/calls/b-solo');
    assert.deepEqual(
      [call.meetingKey, call.level, call.decisiveLegId, call.instances, call.levelHistory, call.writes],
      ['b-solo', 1, 'b1-secure', [], [], []],
    );
  });

  test('a call the policy has not decided on shows level, message and decisive leg null', async () => {
    const call = await getJson<ApiCallDetail>('/api/v1/calls/d-new');
    assert.deepEqual([call.meetingKey, call.level, call.decisiveLegId, call.message], ['corr-d', null, null, null]);
  });
});

describe('GET /api/v1/meetings/:meetingKey', () => {
  test('a meeting across two bridges lists both instances and the participants of both, classified', async () => {
    const meeting = await getJson<ApiMeetingDetail>('/api/v1/meetings/corr-a');
    assert.deepEqual(
      [meeting.meetingKey, meeting.level, meeting.decisiveLegId, meeting.updatedAt, meeting.active],
      ['corr-a', 3, 'a1-lookalike', '2024-05-01T10:03:00Z', true],
    );
    assert.deepEqual(
      meeting.instances.map((i) => [i.id, i.node, i.callBridge]),
      [
        ['a-cb1', 'cb1', BRIDGE_1],
        ['a-cb2', 'cb2', BRIDGE_2],
      ],
    );
    assert.deepEqual(
      meeting.participants.map((p) => [p.id, p.callId, p.classification.counts, p.classification.level, p.classification.rule]),
      [
        ['a1-secure', 'a-cb1', true, 1, 'secureDomain'],
        ['a1-lookalike', 'a-cb1', true, 3, 'unlistedDomain'],
        ['a1-link', 'a-cb1', false, 3, 'noAddress'],
        ['a2-guest', 'a-cb2', true, 3, 'guest'],
        ['a2-internal', 'a-cb2', false, 2, 'internalDomain'],
        ['a2-recorder', 'a-cb2', false, 1, 'secureDomain'],
      ],
    );
    assert.deepEqual(
      meeting.levelHistory.map((c) => c.newLevel),
      [3, 3, 1],
    );
  });

  test('a meeting known only from its calls answers with level null and its instances', async () => {
    const meeting = await getJson<ApiMeetingDetail>('/api/v1/meetings/corr-d');
    assert.deepEqual([meeting.level, meeting.updatedAt, meeting.active, meeting.instances.map((i) => i.id)], [null, null, true, ['d-new']]);
  });

  test('an unknown meeting answers 404 problem+json naming the key', async () => {
    const res = await get('/api/v1/meetings/no-such-meeting');
    assert.equal(res.statusCode, 404);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.match(res.json<{ detail: string }>().detail, /no-such-meeting/);
  });

  test('needs a bearer token', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/meetings/corr-a' });
    assert.equal(res.statusCode, 401);
  });
});

describe('GET /api/v1/meetings', () => {
  test('pages at limit 1 return every meeting once, latest level decision first, ties by meetingKey', async () => {
    const listed = await allPages<ApiMeeting>('/api/v1/meetings', 'meetings', 1);
    assert.deepEqual(
      listed.map((m) => m.meetingKey),
      ['corr-a', 'corr-f', 'b-solo', 'corr-c', 'e-empty'],
    );
  });

  test('each meeting shows its level, activity, first instance and instance count', async () => {
    const { meetings: listed } = await getJson<{ meetings: ApiMeeting[] }>('/api/v1/meetings');
    assert.deepEqual(listed[0], {
      meetingKey: 'corr-a',
      level: 3,
      decisiveLegId: 'a1-lookalike',
      updatedAt: '2024-05-01T10:03:00Z',
      active: true,
      name: 'Board meeting',
      coSpace: 'space-board',
      instanceCount: 2,
    });
  });

  const filters: { query: string; keys: string[] }[] = [
    { query: 'level=3', keys: ['corr-a', 'corr-f'] },
    { query: 'level=1', keys: ['b-solo'] },
    { query: 'active=true', keys: ['corr-a', 'b-solo', 'e-empty'] },
    { query: 'active=false', keys: ['corr-f', 'corr-c'] },
    { query: 'level=3&active=true', keys: ['corr-a'] },
  ];
  for (const { query, keys } of filters) {
    test(`${query} returns exactly the matching meetings across pages`, async () => {
      const listed = await allPages<ApiMeeting>(`/api/v1/meetings?${query}`, 'meetings', 1);
      assert.deepEqual(
        listed.map((m) => m.meetingKey),
        keys,
      );
    });
  }

  // The summary of a meeting's instances (one lateral read of them) is the same whichever way the page was chosen:
  // unfiltered, by level, by active (chosen first or filtered on the summary itself), one meeting by key. corr-f has
  // no call rows (active false, no name, 0); e-empty's call has an empty callCorrelator, so its id is the key.
  const summaries: Record<string, Pick<ApiMeeting, 'active' | 'name' | 'coSpace' | 'instanceCount'>> = {
    'corr-a': { active: true, name: 'Board meeting', coSpace: 'space-board', instanceCount: 2 },
    'corr-f': { active: false, name: null, coSpace: null, instanceCount: 0 },
    'b-solo': { active: true, name: 'Solo', coSpace: null, instanceCount: 1 },
    'corr-c': { active: false, name: 'Ended', coSpace: null, instanceCount: 1 },
    'e-empty': { active: true, name: null, coSpace: null, instanceCount: 1 },
  };
  const summaryOf = (m: ApiMeeting) => ({ active: m.active, name: m.name, coSpace: m.coSpace, instanceCount: m.instanceCount });
  for (const query of ['', 'level=3', 'level=1', 'active=true', 'active=false', 'level=3&active=false']) {
    test(`meetings${query ? `?${query}` : ''} shows each meeting's activity, first instance and instance count`, async () => {
      const listed = await allPages<ApiMeeting>(`/api/v1/meetings${query ? `?${query}` : ''}`, 'meetings', 2);
      assert.ok(listed.length > 0);
      for (const m of listed) assert.deepEqual(summaryOf(m), summaries[m.meetingKey], m.meetingKey);
    });
  }
  test('a meeting by key shows the same activity as the list, and the instances the list counted and named', async () => {
    for (const [key, summary] of Object.entries(summaries)) {
      const meeting = await getJson<ApiMeetingDetail>(`/api/v1/meetings/${key}`);
      assert.deepEqual(
        {
          active: meeting.active,
          name: meeting.instances[0]?.name ?? null,
          coSpace: meeting.instances[0]?.coSpace ?? null,
          instanceCount: meeting.instances.length,
        },
        summary,
        key,
      );
    }
  });

  test('a calls cursor is not accepted by /meetings', async () => {
    const { nextCursor } = await getJson<{ nextCursor: string | null }>('/api/v1/calls?limit=1');
    assert.ok(nextCursor);
    const res = await get(`/api/v1/meetings?cursor=${nextCursor}`);
    assert.equal(res.statusCode, 400);
    assert.match(res.json<{ detail: string }>().detail, /querystring\/cursor/);
  });
});

test('/docs/json documents the meetings routes and the level fields', async () => {
  const doc = await getJson<{
    paths: Record<string, Record<string, { security?: unknown; parameters?: { name: string }[] }>>;
    components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
  }>('/docs/json');
  for (const path of ['/api/v1/meetings', '/api/v1/meetings/{meetingKey}']) {
    assert.deepEqual(doc.paths[path]?.get?.security, [{ bearerAuth: [] }], path);
  }
  assert.ok(doc.paths['/api/v1/calls']?.get?.parameters?.some((p) => p.name === 'level'));
  assert.ok(doc.components.schemas.callDetail?.properties?.levelHistory);
  assert.ok(doc.components.schemas.classification?.properties?.matched);
});
