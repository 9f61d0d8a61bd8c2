/**
 * Operator actions reach CMS whatever happens between taking them and writing them: the records API and the
 * cms-actuator in process on real Postgres and Redis, the simulated two-bridge cluster as CMS. An action stored
 * without its job is picked up by the actuator's sweep; two quick actions on one leg end with the last one's
 * fields; a leg or lobby participant only the roster knows, sent to a bridge that does not host it, is written on
 * the bridge CMS names as its host. Every assertion on the effect reads what the simulator shows.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { loadConfig } from '@cms/config';
import { callLegObservations, operatorActionSteps, operatorActions } from '@cms/db';
import { createLogger } from '@cms/observability';
import { eq, sql } from 'drizzle-orm';
import { buildActuator } from '../../services/cms-actuator/src/app.ts';
import { eventually, onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';
import { API_TOKENS, bearer, insertCallLegs, insertCalls, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';

const silent = createLogger('operator-action-delivery-test', 'silent');
const { url, db } = await testDatabase();
const redis = await testRedis();
const sim: Simulator = await startSimulator({
  bridges: ['cms-1', 'cms-2'].map((name, i) => ({ name, username: 'admin', password: `delivery-secret-${i + 1}` })),
  seed: 20261207,
  controlPort: null,
  // Latency with jitter, so that two writes sent close together may be answered in either order.
  faults: { maxWritesPerSecond: 100, latencyMs: 2, latencyJitterMs: 15 },
});
onTestFileEnd(() => sim.stop());

const config = loadConfig({
  env: {},
  overrides: {
    log: { level: 'silent' },
    api: { token: TOKENS.admin, tokens: API_TOKENS },
    database: { url },
    redis: { url: redis.url },
    queue: { prefix: redis.prefix },
    actuator: { reconcileIntervalSeconds: 0 },
    policy: { secureDomains: ['secure.example'], internalDomains: ['corp.example'] },
    cms: {
      // The live roster is written by hand here (a roster-only leg); the feed would write its own.
      events: { enabled: false },
      // No callBridgeId: the hosting node is found by asking the nodes, as a deployment that does not list them.
      nodes: sim.bridges.map((b) => ({ name: b.name, url: b.url, username: b.username, password: b.password, maxWritesPerSecond: 100 })),
    },
  },
});
const actuator = await buildActuator({
  config,
  db,
  log: silent,
  tuning: { sweepIntervalMs: 100, sweepMinAgeMs: 500, retryBaseDelayMs: 10, retryMaxDelayMs: 50, healthProbeIntervalMs: 100 },
});
after(() => actuator.close());
const api = await startRecordsApi(db, { config });

function request(method: 'POST' | 'PATCH', path: string, body: object) {
  return api.inject({ method, url: `/api/v1${path}`, headers: bearer(TOKENS.operator), payload: body });
}

interface ActionAnswer {
  id: number;
  status: string;
  failureDetails: unknown;
  result: Record<string, unknown> | null;
  steps: { node: string; status: string }[];
}

async function outcome(id: number): Promise<ActionAnswer> {
  return eventually(
    async () => {
      const res = await api.inject({ method: 'GET', url: `/api/v1/actions/${id}`, headers: bearer(TOKENS.viewer) });
      const body = res.json() as ActionAnswer;
      return body.status !== 'queued' && body;
    },
    { what: `action ${id} to finish`, timeoutMs: 20_000, intervalMs: 20 },
  );
}

function legOn(callId: string, legId: string) {
  const found = sim.inspectCall(callId).legs.find((l) => l.id === legId);
  assert.ok(found, `leg ${legId} in call ${callId}`);
  return found;
}

/** A meeting on both bridges, with alice on cms-1 and bob on cms-2, known to the records API by CDR rows. */
async function meeting(name: string) {
  const handle = sim.startCall({ name, bridges: [] });
  const alice = sim.join({ meeting: handle, bridge: 'cms-1', remoteParty: `alice.${name}@corp.example` });
  const bob = sim.join({ meeting: handle, bridge: 'cms-2', remoteParty: `bob.${name}@corp.example` });
  const correlator = handle.callCorrelator;
  await insertCalls(db, [
    { id: alice.callId, node: 'cms-1', callCorrelator: correlator, startedAt: new Date().toISOString() },
    { id: bob.callId, node: 'cms-2', callCorrelator: correlator, startedAt: new Date().toISOString() },
  ]);
  await insertCallLegs(db, [
    { id: alice.callLegId, callId: alice.callId, node: 'cms-1', remoteParty: `alice.${name}@corp.example`, state: 'connected' },
  ]);
  return { handle, alice, bob };
}

describe('never lost', () => {
  test('an action stored without its job (the records API stopped before queueing it) is applied by the sweep', async () => {
    const { alice } = await meeting('Stored only');
    assert.equal(legOn(alice.callId, alice.callLegId).rxAudioMute, false);
    // What the records API stores before it queues: the action and its step, and no job on any queue.
    const [action] = await db
      .insert(operatorActions)
      .values({
        tokenName: 'lobby-desk',
        role: 'operator',
        kind: 'updateCallLeg',
        callId: alice.callId,
        legId: alice.callLegId,
        parameters: { rxAudioMute: true },
        createdAt: sql`now() - interval '1 minute'`,
      })
      .returning({ id: operatorActions.id });
    assert.ok(action);
    await db.insert(operatorActionSteps).values({
      actionId: action.id,
      step: 0,
      node: 'cms-1',
      callId: alice.callId,
      params: { callLegId: alice.callLegId, fields: { rxAudioMute: true } },
    });
    const done = await outcome(action.id);
    assert.equal(done.status, 'applied', JSON.stringify(done));
    assert.equal(legOn(alice.callId, alice.callLegId).rxAudioMute, true);
  });

  test('a dial-out step that a handler started is never queued again by the sweep', async () => {
    const { alice } = await meeting('Started dial-out');
    const [action] = await db
      .insert(operatorActions)
      .values({
        tokenName: 'lobby-desk',
        role: 'operator',
        kind: 'addParticipant',
        callId: alice.callId,
        parameters: { remoteParty: 'never-twice@corp.example' },
        createdAt: sql`now() - interval '1 minute'`,
      })
      .returning({ id: operatorActions.id });
    assert.ok(action);
    // Started (it may have reached CMS), and its job is gone: queueing it again could ring the number twice.
    await db.insert(operatorActionSteps).values({
      actionId: action.id,
      step: 0,
      node: 'cms-1',
      callId: alice.callId,
      params: { callId: alice.callId, remoteParty: 'never-twice@corp.example', options: {} },
      startedAt: sql`now() - interval '1 minute'`,
      attempts: 1,
    });
    // A later action stored without its job is swept: once it is applied, the sweep has had its turn at both.
    const [later] = await db
      .insert(operatorActions)
      .values({
        tokenName: 'lobby-desk',
        role: 'operator',
        kind: 'updateCallLeg',
        callId: alice.callId,
        legId: alice.callLegId,
        parameters: { txVideoMute: true },
        createdAt: sql`now() - interval '1 minute'`,
      })
      .returning({ id: operatorActions.id });
    assert.ok(later);
    await db.insert(operatorActionSteps).values({
      actionId: later.id,
      step: 0,
      node: 'cms-1',
      callId: alice.callId,
      params: { callLegId: alice.callLegId, fields: { txVideoMute: true } },
    });
    assert.equal((await outcome(later.id)).status, 'applied');
    const [started] = await db.select({ status: operatorActions.status }).from(operatorActions).where(eq(operatorActions.id, action.id));
    assert.equal(started?.status, 'queued');
    assert.equal(sim.writeLog({ method: 'POST', urlContains: `/calls/${alice.callId}/participants` }).length, 0);
  });
});

describe('order per leg', () => {
  test('mute then unmute sent back to back, many times: the leg ends as the last accepted action asked', async () => {
    const { alice } = await meeting('Back to back');
    const path = `/calls/${alice.callId}/participants/${alice.callLegId}`;
    for (let round = 0; round < 15; round++) {
      // Sent together: which one the records API accepts last is the one that must win (action ids are acceptance order).
      const answers = await Promise.all([request('PATCH', path, { rxAudioMute: true }), request('PATCH', path, { rxAudioMute: false })]);
      const ids = answers.map((res) => {
        assert.ok(res.statusCode === 200 || res.statusCode === 202, res.body);
        return (res.json() as ActionAnswer).id;
      });
      const done = await Promise.all(ids.map(outcome));
      for (const d of done) assert.equal(d.status, 'applied', JSON.stringify(d));
      const [muteId, unmuteId] = ids as [number, number];
      const last = muteId > unmuteId; // the mute was accepted last
      assert.equal(legOn(alice.callId, alice.callLegId).rxAudioMute, last, `round ${round}: the later action asked rxAudioMute=${last}`);
    }
  });
});

describe('a leg only the roster knows, on another bridge', () => {
  test("a mute sent to the roster's bridge is handed to the bridge CMS names as the participant's host", async () => {
    const { alice, bob } = await meeting('Roster only');
    // The roster taken on cms-1 lists bob (hosted by cms-2); no CDR has named his bridge yet.
    await db.insert(callLegObservations).values({
      id: bob.callLegId,
      callId: alice.callId,
      node: 'cms-1',
      remoteParty: 'bob@corp.example',
      participantId: bob.participantId,
      source: 'events',
    });
    const res = await request('PATCH', `/calls/${alice.callId}/participants/${bob.callLegId}`, { rxVideoMute: true });
    assert.ok(res.statusCode === 200 || res.statusCode === 202, res.body);
    const done = await outcome((res.json() as ActionAnswer).id);
    assert.equal(done.status, 'applied', JSON.stringify(done));
    assert.equal(legOn(bob.callId, bob.callLegId).rxVideoMute, true);
    assert.deepEqual(
      done.steps.map((s) => [s.node, s.status]),
      [
        ['cms-1', 'applied'],
        ['cms-2', 'applied'],
      ],
    );
  });

  test('admitting a lobby guest the roster lists on the wrong bridge admits them on their own bridge', async () => {
    const handle = sim.startCall({ name: 'Roster lobby', bridges: [] });
    const host = sim.join({ meeting: handle, bridge: 'cms-1', remoteParty: 'host@corp.example', needsActivation: true });
    const guest = sim.join({ meeting: handle, bridge: 'cms-2', kind: 'guest', needsActivation: true });
    assert.equal(legOn(guest.callId, guest.callLegId).deactivated, true, 'the guest waits in the lobby');
    await insertCalls(db, [{ id: host.callId, node: 'cms-1', callCorrelator: handle.callCorrelator, startedAt: new Date().toISOString() }]);
    await db.insert(callLegObservations).values({
      id: guest.callLegId,
      callId: host.callId,
      node: 'cms-1',
      remoteParty: 'guest@far.example',
      participantId: guest.participantId,
      deactivated: true,
      source: 'events',
    });
    const res = await request('POST', '/lobby/admit', { participants: [guest.callLegId] });
    assert.ok(res.statusCode === 200 || res.statusCode === 202, res.body);
    const done = await outcome((res.json() as ActionAnswer).id);
    assert.equal(done.status, 'applied', JSON.stringify(done));
    assert.equal(legOn(guest.callId, guest.callLegId).deactivated, false);
    assert.equal(legOn(host.callId, host.callLegId).deactivated, true, 'nobody else was admitted');
  });
});
