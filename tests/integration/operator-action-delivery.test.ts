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
import { callLegObservations, operatorActionSteps, operatorActions } from '@cms/db';
import { createLogger } from '@cms/observability';
import { eq, sql } from 'drizzle-orm';
import { buildActuator } from '../../services/cms-actuator/src/app.ts';
import { eventually, onTestFileEnd, testDatabase, testRedis } from '../helpers/infra.ts';
import { bearer, insertCallLegs, insertCalls, operatorActionsConfig, startRecordsApi, TOKENS } from '../helpers/records-fixtures.ts';

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

// The live roster is written by hand here (a roster-only leg; the feed, off, would write its own). No callBridgeId:
// the hosting node is found by asking the nodes, as a deployment that does not list them.
const config = operatorActionsConfig({
  databaseUrl: url,
  redis,
  bridges: sim.bridges,
  node: () => ({ maxWritesPerSecond: 100 }),
  policy: { secureDomains: ['secure.example'], internalDomains: ['corp.example'] },
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

interface StoredStep {
  node: string;
  callId: string;
  params: Record<string, unknown>;
  /** A handler took it already (it may have reached CMS). */
  started?: boolean;
}

/**
 * An action as the records API stores it before it queues its jobs (created a minute ago, so the actuator's sweep
 * takes its steps), without a job on any queue; `steps` may come later (addSteps), so an action can hold its place
 * in the acceptance order before it can run.
 */
async function storeWithoutJob(
  action: { kind: 'updateCallLeg' | 'updateAllParticipants' | 'addParticipant'; callId: string; legId?: string; meetingKey?: string },
  parameters: Record<string, unknown>,
  steps: StoredStep[] = [],
): Promise<number> {
  const [row] = await db
    .insert(operatorActions)
    .values({ tokenName: 'lobby-desk', role: 'operator', ...action, parameters, createdAt: sql`now() - interval '1 minute'` })
    .returning({ id: operatorActions.id });
  assert.ok(row);
  await addSteps(row.id, steps);
  return row.id;
}

async function addSteps(actionId: number, steps: StoredStep[]): Promise<void> {
  if (!steps.length) return;
  await db.insert(operatorActionSteps).values(
    steps.map((s, step) => ({
      actionId,
      step,
      node: s.node,
      callId: s.callId,
      params: s.params,
      ...(s.started ? { startedAt: sql`now() - interval '1 minute'`, attempts: 1 } : {}),
    })),
  );
}

describe('never lost', () => {
  test('an action stored without its job (the records API stopped before queueing it) is applied by the sweep', async () => {
    const { alice } = await meeting('Stored only');
    assert.equal(legOn(alice.callId, alice.callLegId).rxAudioMute, false);
    // What the records API stores before it queues: the action and its step, and no job on any queue.
    const action = await storeWithoutJob({ kind: 'updateCallLeg', callId: alice.callId, legId: alice.callLegId }, { rxAudioMute: true }, [
      { node: 'cms-1', callId: alice.callId, params: { callLegId: alice.callLegId, fields: { rxAudioMute: true } } },
    ]);
    const done = await outcome(action);
    assert.equal(done.status, 'applied', JSON.stringify(done));
    assert.equal(legOn(alice.callId, alice.callLegId).rxAudioMute, true);
  });

  test('a dial-out step that a handler started is never queued again by the sweep', async () => {
    const { alice } = await meeting('Started dial-out');
    // Started (it may have reached CMS), and its job is gone: queueing it again could ring the number twice.
    const action = await storeWithoutJob({ kind: 'addParticipant', callId: alice.callId }, { remoteParty: 'never-twice@corp.example' }, [
      {
        node: 'cms-1',
        callId: alice.callId,
        params: { callId: alice.callId, remoteParty: 'never-twice@corp.example', options: {} },
        started: true,
      },
    ]);
    // A later action stored without its job is swept: once it is applied, the sweep has had its turn at both.
    const later = await storeWithoutJob({ kind: 'updateCallLeg', callId: alice.callId, legId: alice.callLegId }, { txVideoMute: true }, [
      { node: 'cms-1', callId: alice.callId, params: { callLegId: alice.callLegId, fields: { txVideoMute: true } } },
    ]);
    assert.equal((await outcome(later)).status, 'applied');
    const [started] = await db.select({ status: operatorActions.status }).from(operatorActions).where(eq(operatorActions.id, action));
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

describe('order across a leg and everyone', () => {
  // Each test makes the older action run last, the order that would let it undo the newer one: the older action
  // takes its place in the acceptance order first (its row, no steps), the newer one is applied through the API,
  // then the older one's steps are stored and the sweep runs them.

  test('a mute of one leg, then a mute of everyone: the later mute of everyone wins, whatever ran last', async () => {
    const { handle, alice, bob } = await meeting('Leg then everyone');
    const older = await storeWithoutJob(
      { kind: 'updateCallLeg', callId: alice.callId, legId: alice.callLegId, meetingKey: handle.callCorrelator },
      { rxAudioMute: false, chosenLayout: 'stacked' },
    );
    const res = await request('PATCH', `/calls/${alice.callId}/participants`, { rxAudioMute: true });
    assert.ok(res.statusCode === 200 || res.statusCode === 202, res.body);
    const everyone = (res.json() as ActionAnswer).id;
    assert.ok(everyone > older);
    assert.equal((await outcome(everyone)).status, 'applied');
    assert.equal(legOn(alice.callId, alice.callLegId).rxAudioMute, true);

    await addSteps(older, [
      {
        node: 'cms-1',
        callId: alice.callId,
        params: { callLegId: alice.callLegId, fields: { rxAudioMute: false, chosenLayout: 'stacked' } },
      },
    ]);
    const done = await outcome(older);
    assert.equal(done.status, 'applied', JSON.stringify(done));
    assert.deepEqual(done.result?.supersededFields, { rxAudioMute: everyone });
    assert.equal(legOn(alice.callId, alice.callLegId).rxAudioMute, true, 'alice stays muted: the mute of everyone came later');
    assert.equal(legOn(alice.callId, alice.callLegId).chosenLayout, 'stacked', 'what the later action did not set is written');
    assert.equal(legOn(bob.callId, bob.callLegId).rxAudioMute, true);
  });

  test('a mute of everyone, then an unmute of one leg: that leg stays unmuted, whatever ran last', async () => {
    const { handle, alice, bob } = await meeting('Everyone then leg');
    sim.updateCallLeg(alice.callLegId, { rxAudioMute: true });
    const fields = { rxAudioMute: true, rxVideoMute: true };
    const older = await storeWithoutJob({ kind: 'updateAllParticipants', callId: alice.callId, meetingKey: handle.callCorrelator }, fields);
    const res = await request('PATCH', `/calls/${alice.callId}/participants/${alice.callLegId}`, { rxAudioMute: false });
    assert.ok(res.statusCode === 200 || res.statusCode === 202, res.body);
    const unmute = (res.json() as ActionAnswer).id;
    assert.ok(unmute > older);
    assert.equal((await outcome(unmute)).status, 'applied');
    assert.equal(legOn(alice.callId, alice.callLegId).rxAudioMute, false);

    await addSteps(older, [
      { node: 'cms-1', callId: alice.callId, params: { callId: alice.callId, fields } },
      { node: 'cms-2', callId: bob.callId, params: { callId: bob.callId, fields } },
    ]);
    const done = await outcome(older);
    assert.equal(done.status, 'applied', JSON.stringify(done));
    const aliceNow = legOn(alice.callId, alice.callLegId);
    assert.equal(aliceNow.rxAudioMute, false, 'alice stays unmuted: her unmute came later');
    assert.equal(aliceNow.rxVideoMute, true, 'the field her unmute did not set is written');
    const bobNow = legOn(bob.callId, bob.callLegId);
    assert.equal(bobNow.rxAudioMute, true);
    assert.equal(bobNow.rxVideoMute, true);
  });

  test('more later per-leg actions than CMS takes filterIds: everyone is written, then the later actions again', async () => {
    const { handle, alice, bob } = await meeting('Many later');
    const many = Array.from({ length: 21 }, (_, k) =>
      sim.join({ meeting: handle, bridge: 'cms-1', remoteParty: `p${k}.many@corp.example` }),
    );
    await insertCallLegs(
      db,
      many.map((p) => ({ id: p.callLegId, callId: p.callId, node: 'cms-1', remoteParty: 'p@corp.example', groupId: p.participantId })),
    );
    for (const p of many) sim.updateCallLeg(p.callLegId, { rxAudioMute: true });
    const older = await storeWithoutJob(
      { kind: 'updateAllParticipants', callId: alice.callId, meetingKey: handle.callCorrelator },
      {
        rxAudioMute: true,
      },
    );
    const unmutes = await Promise.all(
      many.map((p) => request('PATCH', `/calls/${alice.callId}/participants/${p.callLegId}`, { rxAudioMute: false })),
    );
    for (const res of unmutes) assert.equal((await outcome((res.json() as ActionAnswer).id)).status, 'applied');

    await addSteps(older, [
      { node: 'cms-1', callId: alice.callId, params: { callId: alice.callId, fields: { rxAudioMute: true } } },
      { node: 'cms-2', callId: bob.callId, params: { callId: bob.callId, fields: { rxAudioMute: true } } },
    ]);
    const done = await outcome(older);
    assert.equal(done.status, 'applied', JSON.stringify(done));
    for (const p of many) assert.equal(legOn(p.callId, p.callLegId).rxAudioMute, false, `${p.callLegId} unmuted later`);
    assert.equal(legOn(alice.callId, alice.callLegId).rxAudioMute, true);
    assert.equal(legOn(bob.callId, bob.callLegId).rxAudioMute, true);
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

  test('with callBridgeId configured, the step goes straight to the node of the callBridge CMS names, asking no other node', async () => {
    // A cluster of three whose nodes list their callBridge GUIDs: its own simulator, actuator and records API.
    const names = ['cbx-1', 'cbx-2', 'cbx-3'];
    const cluster = await startSimulator({
      bridges: names.map((name, i) => ({ name, username: 'admin', password: `bridge-id-secret-${i + 1}` })),
      seed: 20261208,
      controlPort: null,
    });
    after(() => cluster.stop());
    const queue = await testRedis();
    const withIds = operatorActionsConfig({
      databaseUrl: url,
      redis: queue,
      bridges: cluster.bridges,
      node: (b) => ({ callBridgeId: b.callBridgeId }),
    });
    const actuator2 = await buildActuator({ config: withIds, db, log: silent, tuning: { retryBaseDelayMs: 10, retryMaxDelayMs: 50 } });
    after(() => actuator2.close());
    const api2 = await startRecordsApi(db, { config: withIds });

    const handle = cluster.startCall({ name: 'Bridge ids', bridges: [] });
    const host = cluster.join({ meeting: handle, bridge: 'cbx-1', remoteParty: 'host@corp.example' });
    const far = cluster.join({ meeting: handle, bridge: 'cbx-3', remoteParty: 'far@corp.example' });
    await insertCalls(db, [{ id: host.callId, node: 'cbx-1', callCorrelator: handle.callCorrelator, startedAt: new Date().toISOString() }]);
    // The roster taken on cbx-1 lists the participant cbx-3 hosts.
    await db.insert(callLegObservations).values({
      id: far.callLegId,
      callId: host.callId,
      node: 'cbx-1',
      remoteParty: 'far@corp.example',
      participantId: far.participantId,
      source: 'events',
    });
    const res = await api2.inject({
      method: 'PATCH',
      url: `/api/v1/calls/${host.callId}/participants/${far.callLegId}`,
      headers: bearer(TOKENS.operator),
      payload: { rxAudioMute: true },
    });
    assert.ok(res.statusCode === 200 || res.statusCode === 202, res.body);
    const id = (res.json() as ActionAnswer).id;
    const done = await eventually(
      async () => {
        const body = (
          await api2.inject({ method: 'GET', url: `/api/v1/actions/${id}`, headers: bearer(TOKENS.viewer) })
        ).json() as ActionAnswer;
        return body.status !== 'queued' && body;
      },
      { what: 'the handed-over action to finish', timeoutMs: 20_000, intervalMs: 20 },
    );
    assert.equal(done.status, 'applied', JSON.stringify(done));
    assert.deepEqual(
      done.steps.map((s) => [s.node, s.status]),
      [
        ['cbx-1', 'applied'],
        ['cbx-3', 'applied'],
      ],
    );
    const farNow = cluster.inspectCall(far.callId).legs.find((l) => l.id === far.callLegId);
    assert.equal(farNow?.rxAudioMute, true);
    // Matched by its configured callBridgeId: cbx-2 was never asked about the participant.
    const asked = (bridge: string) =>
      cluster.requestLog({ bridge }).filter((e) => e.method === 'GET' && e.url.includes(`/participants/${far.participantId}`)).length;
    assert.equal(asked('cbx-2'), 0);
    assert.equal(asked('cbx-3'), 1);
  });
});
