/**
 * Operator actions as the records API takes them, on rows written straight to Postgres and the real Redis queues
 * (no actuator runs here, so accepted actions stay queued): who may act, every bad input answered 4xx with nothing
 * stored or queued, one step per Call Bridge of a meeting, Idempotency-Key, the audit list and the lobby.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '@cms/config';
import { callLegObservations, operatorActionSteps, operatorActions } from '@cms/db';
import { type CmsWriteJob, cmsWritesQueueName, createRedisConnection } from '@cms/queue';
import { Queue } from 'bullmq';
import { testDatabase, testRedis } from '../helpers/infra.ts';
import { API_TOKENS, bearer, insertCallLegs, insertCalls, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';

const { url, db } = await testDatabase();
const redis = await testRedis();
const config = loadConfig({
  env: {},
  overrides: {
    api: { token: TOKENS.admin, tokens: API_TOKENS },
    database: { url },
    redis: { url: redis.url },
    queue: { prefix: redis.prefix },
    cms: {
      nodes: ['cms-1', 'cms-2'].map((name, i) => ({ name, url: `http://127.0.0.1:${9 + i}`, username: 'u', password: 'p' })),
    },
  },
});
const app = await startRecordsApi(db, { config });

const connection = createRedisConnection(redis.url, 'producer');
const queues = new Map(
  ['cms-1', 'cms-2'].map((node) => [node, new Queue<CmsWriteJob>(cmsWritesQueueName(node), { connection, prefix: redis.prefix })]),
);
const { after } = await import('node:test');
after(async () => {
  for (const q of queues.values()) await q.close();
  connection.disconnect();
});

const g = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const MEETING = g(900);
const CALL_1 = g(1); // cms-1 instance of MEETING
const CALL_2 = g(2); // cms-2 instance of MEETING
const ENDED = g(3);
const ELSEWHERE = g(4); // on a node we have no credentials for
const OTHER = g(5); // another meeting on cms-1
const ALICE = g(11); // CALL_1, connected
const GUEST = g(12); // CALL_1, waits in the lobby (CDRs)
const BOB = g(21); // CALL_2, connected
const ROSTER_GUEST = g(22); // CALL_2, in the lobby as only the live roster knows yet
const LEFT = g(13); // CALL_1, ended
const CAROL = g(51); // OTHER
const ON_ENDED = g(31);
const ON_ELSEWHERE = g(41);

await insertCalls(db, [
  { id: CALL_1, node: 'cms-1', callCorrelator: MEETING, startedAt: '2026-12-07T08:00:00Z' },
  { id: CALL_2, node: 'cms-2', callCorrelator: MEETING, startedAt: '2026-12-07T08:00:01Z' },
  { id: ENDED, node: 'cms-1', startedAt: '2026-12-07T07:00:00Z', endedAt: '2026-12-07T07:30:00Z' },
  { id: ELSEWHERE, node: 'cms-9', startedAt: '2026-12-07T08:00:00Z' },
  { id: OTHER, node: 'cms-1', startedAt: '2026-12-07T08:00:00Z' },
]);
await insertCallLegs(db, [
  { id: ALICE, callId: CALL_1, node: 'cms-1', remoteParty: 'alice@corp.example', state: 'connected', groupId: g(111) },
  { id: GUEST, callId: CALL_1, node: 'cms-1', remoteParty: 'guest@far.example', deactivated: true, groupId: g(112) },
  { id: LEFT, callId: CALL_1, node: 'cms-1', remoteParty: 'left@corp.example', endedAt: '2026-12-07T08:05:00Z' },
  { id: BOB, callId: CALL_2, node: 'cms-2', remoteParty: 'bob@corp.example', state: 'connected' },
  { id: CAROL, callId: OTHER, node: 'cms-1', remoteParty: 'carol@corp.example', state: 'connected' },
  { id: ON_ENDED, callId: ENDED, node: 'cms-1', remoteParty: 'x@corp.example', endedAt: '2026-12-07T07:30:00Z' },
  { id: ON_ELSEWHERE, callId: ELSEWHERE, node: 'cms-9', remoteParty: 'y@corp.example' },
]);
await db.insert(callLegObservations).values({
  id: ROSTER_GUEST,
  callId: CALL_2,
  node: 'cms-2',
  remoteParty: 'walk-in@far.example',
  deactivated: true,
  participantId: g(122),
  source: 'events',
});

type Method = 'POST' | 'PATCH' | 'DELETE' | 'GET';
function call(method: Method, path: string, body?: unknown, token: string = TOKENS.operator, headers: Record<string, string> = {}) {
  return app.inject({
    method,
    url: `/api/v1${path}`,
    headers: { ...bearer(token), ...headers },
    ...(body === undefined ? {} : { payload: body as object }),
  });
}

async function stored() {
  const actions = await db.select().from(operatorActions);
  const steps = await db.select().from(operatorActionSteps);
  return { actions: actions.length, steps: steps.length };
}

async function jobs(node: string) {
  return (await queues.get(node)?.getJobs(['wait', 'prioritized', 'delayed', 'active'])) ?? [];
}

const WRITES: [Method, string, unknown][] = [
  ['POST', `/calls/${CALL_1}/participants`, { remoteParty: 'dave@corp.example' }],
  ['PATCH', `/calls/${CALL_1}/participants/${ALICE}`, { rxAudioMute: true }],
  ['PATCH', `/calls/${CALL_1}/participants`, { rxAudioMute: true }],
  ['POST', `/calls/${CALL_1}/presenter`, { participant: ALICE }],
  ['DELETE', `/calls/${CALL_1}/presenter`, undefined],
  ['DELETE', `/calls/${CALL_1}/participants/${ALICE}`, undefined],
  ['DELETE', `/calls/${CALL_1}`, undefined],
  ['POST', '/lobby/admit', { participants: [GUEST] }],
];

describe('roles', () => {
  test('a viewer token gets 403 on every call-control route, and nothing is stored or queued', async () => {
    for (const [method, path, body] of WRITES) {
      const res = await call(method, path, body, TOKENS.viewer);
      assert.equal(res.statusCode, 403, `${method} ${path}`);
      assert.match(res.json().detail, /needs the operator role/);
    }
    assert.deepEqual(await stored(), { actions: 0, steps: 0 });
    assert.equal((await jobs('cms-1')).length + (await jobs('cms-2')).length, 0);
  });

  test('a viewer may read the lobby and the actions', async () => {
    assert.equal((await call('GET', '/lobby', undefined, TOKENS.viewer)).statusCode, 200);
    assert.equal((await call('GET', '/actions', undefined, TOKENS.viewer)).statusCode, 200);
  });
});

describe('bad input: a clear 4xx, nothing stored or queued', () => {
  const cases: [string, Method, string, unknown, number, RegExp][] = [
    ['unknown call', 'PATCH', `/calls/${g(999)}/participants`, { rxAudioMute: true }, 404, /No call with id/],
    ['unknown leg', 'PATCH', `/calls/${CALL_1}/participants/${g(998)}`, { rxAudioMute: true }, 404, /No call leg/],
    ['a leg of another call', 'DELETE', `/calls/${CALL_1}/participants/${CAROL}`, undefined, 404, /belongs to call/],
    ['a leg that has left', 'DELETE', `/calls/${CALL_1}/participants/${LEFT}`, undefined, 409, /has left the call/],
    ['an ended call', 'POST', `/calls/${ENDED}/participants`, { remoteParty: 'dave@corp.example' }, 409, /has ended/],
    ['an ended call (its leg)', 'PATCH', `/calls/${ENDED}/participants/${ON_ENDED}`, { txAudioMute: true }, 409, /has ended/],
    ['an unconfigured node', 'DELETE', `/calls/${ELSEWHERE}`, undefined, 409, /not configured/],
    ['an unconfigured node (admit)', 'POST', '/lobby/admit', { participants: [ON_ELSEWHERE] }, 409, /not configured/],
    [
      'an invalid layout',
      'PATCH',
      `/calls/${CALL_1}/participants/${ALICE}`,
      { chosenLayout: 'bigSquares' },
      400,
      /must be one of: allEqual, speakerOnly/,
    ],
    ['an empty remoteParty', 'POST', `/calls/${CALL_1}/participants`, { remoteParty: '' }, 400, /remoteParty/],
    [
      'a malformed remoteParty',
      'POST',
      `/calls/${CALL_1}/participants`,
      { remoteParty: 'alice at example com' },
      400,
      /not an address CMS can dial/,
    ],
    [
      'a remoteParty with markup',
      'POST',
      `/calls/${CALL_1}/participants`,
      { remoteParty: '<sip:a@b>' },
      400,
      /not an address CMS can dial/,
    ],
    ['no remoteParty', 'POST', `/calls/${CALL_1}/participants`, {}, 400, /remoteParty/],
    [
      'admitting someone not in the lobby',
      'POST',
      '/lobby/admit',
      { participants: [GUEST, ALICE] },
      409,
      new RegExp(`Not waiting in a lobby: ${ALICE}`),
    ],
    ['admit all where nobody waits', 'POST', '/lobby/admit', { call: OTHER, all: true }, 409, /Nobody waits/],
    ['admit with both forms', 'POST', '/lobby/admit', { participants: [GUEST], call: CALL_1, all: true }, 400, /either/],
    ['an unknown field', 'PATCH', `/calls/${CALL_1}/participants`, { mute: true }, 400, /not a known parameter/],
    ['an empty change', 'PATCH', `/calls/${CALL_1}/participants`, {}, 400, /fewer than 1 properties/],
    ['a presenter not in the call', 'POST', `/calls/${CALL_1}/presenter`, { participant: CAROL }, 404, /belongs to call/],
    ['presenter mode off when it is not on', 'DELETE', `/calls/${CALL_1}/presenter`, undefined, 409, /not on/],
    ['a bad Idempotency-Key', 'DELETE', `/calls/${CALL_1}`, undefined, 400, /Idempotency-Key/],
  ];
  for (const [what, method, path, body, status, detail] of cases) {
    test(`${what}: ${status}`, async () => {
      const headers: Record<string, string> = what === 'a bad Idempotency-Key' ? { 'idempotency-key': 'has spaces in it' } : {};
      const res = await call(method, path, body, TOKENS.operator, headers);
      assert.equal(res.statusCode, status, res.body);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.match(res.json().detail, detail);
      assert.deepEqual(await stored(), { actions: 0, steps: 0 });
      assert.equal((await jobs('cms-1')).length + (await jobs('cms-2')).length, 0);
    });
  }
});

describe('accepted actions', () => {
  test('mute-all on a meeting spanning two bridges: 202, one step and one queued job per bridge, audited with who asked', async () => {
    const res = await call('PATCH', `/calls/${CALL_1}/participants`, { rxAudioMute: true }, TOKENS.namedAdmin);
    assert.equal(res.statusCode, 202, res.body);
    const action = res.json();
    assert.equal(res.headers.location, `/api/v1/actions/${action.id}`);
    assert.equal(action.status, 'queued');
    assert.deepEqual(action.by, { tokenName: 'ops-admin', role: 'admin' });
    assert.deepEqual(action.parameters, { rxAudioMute: true });
    assert.deepEqual(
      action.steps.map((s: { node: string; callId: string }) => [s.node, s.callId]),
      [
        ['cms-1', CALL_1],
        ['cms-2', CALL_2],
      ],
    );
    for (const [node, step] of [
      ['cms-1', 0],
      ['cms-2', 1],
    ] as const) {
      const job = await queues.get(node)?.getJob(`action-${action.id}-${step}`);
      assert.deepEqual(job?.data, { kind: 'updateAllParticipants', actionId: action.id, step });
    }
    const followed = await call('GET', `/actions/${action.id}`, undefined, TOKENS.viewer);
    assert.equal(followed.json().id, action.id);
  });

  test('Idempotency-Key: a retried POST is the same action (one job); the key with another body is refused', async () => {
    const key = 'dial-dave-0001';
    const first = await call('POST', `/calls/${CALL_1}/participants`, { remoteParty: 'sip:dave@corp.example' }, TOKENS.operator, {
      'idempotency-key': key,
    });
    assert.equal(first.statusCode, 202, first.body);
    const again = await call('POST', `/calls/${CALL_1}/participants`, { remoteParty: 'sip:dave@corp.example' }, TOKENS.operator, {
      'idempotency-key': key,
    });
    assert.equal(again.statusCode, 202);
    assert.equal(again.json().id, first.json().id);
    assert.equal(again.headers['idempotent-replayed'], 'true');
    const dialOuts = (await jobs('cms-1')).filter((j) => j.data.kind === 'addParticipant');
    assert.equal(dialOuts.length, 1);
    const other = await call('POST', `/calls/${CALL_1}/participants`, { remoteParty: 'sip:erin@corp.example' }, TOKENS.operator, {
      'idempotency-key': key,
    });
    assert.equal(other.statusCode, 422);
    assert.match(other.json().detail, /different request/);
  });

  test('admit all of a meeting: the lobby of both bridges, CDR and live-roster waiting alike', async () => {
    const res = await call('POST', '/lobby/admit', { call: CALL_2, all: true });
    assert.equal(res.statusCode, 202, res.body);
    const steps = res.json().steps as { node: string }[];
    assert.deepEqual(steps.map((s) => s.node).sort(), ['cms-1', 'cms-2']);
    const rows = await db.select().from(operatorActionSteps);
    const admitted = rows
      .filter((r) => r.actionId === res.json().id)
      .flatMap((r) => (r.params.legs as { callLegId: string }[]).map((l) => l.callLegId));
    assert.deepEqual(admitted.sort(), [GUEST, ROSTER_GUEST].sort());
  });
});

describe('reads', () => {
  test('GET /lobby lists who waits on every bridge, with the participant id where known', async () => {
    const res = await call('GET', '/lobby', undefined, TOKENS.viewer);
    const waiting = res.json().participants as { callLegId: string; node: string; participantId: string | null; source: string }[];
    assert.deepEqual(
      waiting.map((w) => [w.callLegId, w.node, w.participantId, w.source]).sort(),
      [
        [GUEST, 'cms-1', g(112), 'cdr'],
        [ROSTER_GUEST, 'cms-2', g(122), 'liveRoster'],
      ].sort(),
    );
  });

  test('GET /actions: newest first, filters, and keyset pages that cover every action once', async () => {
    const all = (await call('GET', '/actions?limit=500', undefined, TOKENS.viewer)).json().actions as { id: number; kind: string }[];
    assert.ok(all.length >= 3);
    assert.deepEqual(
      all.map((a) => a.id),
      [...all.map((a) => a.id)].sort((a, b) => b - a),
    );
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page: { actions: { id: number }[]; nextCursor: string | null } = (
        await call('GET', `/actions?limit=1${cursor ? `&cursor=${cursor}` : ''}`, undefined, TOKENS.viewer)
      ).json();
      seen.push(...page.actions.map((a) => a.id));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(
      seen,
      all.map((a) => a.id),
    );
    const byKind = (await call('GET', '/actions?kind=addParticipant', undefined, TOKENS.viewer)).json().actions as { kind: string }[];
    assert.ok(byKind.length === 1 && byKind[0]?.kind === 'addParticipant');
    const byToken = (await call('GET', '/actions?tokenName=ops-admin', undefined, TOKENS.viewer)).json().actions as {
      by: { tokenName: string };
    }[];
    assert.ok(byToken.length === 1 && byToken[0]?.by.tokenName === 'ops-admin');
    assert.equal((await call('GET', '/actions?cursor=bm90LWEtY3Vyc29y', undefined, TOKENS.viewer)).statusCode, 400);
  });
});
