/**
 * The lobby end to end on two simulated bridges: GET /api/v1/lobby lists who waits on every bridge, and
 * POST /api/v1/lobby/admit lets in one, a selection spanning both bridges, or everyone waiting in a meeting
 * (PUT /participants/<id> deactivated=false on the bridge hosting each). Effects are read from the simulator.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { type ControlStack, knownCall, startControlStack, VIEWER_TOKEN } from '../helpers/call-control.ts';
import { eventually } from '../helpers/infra.ts';

let control: ControlStack;
const legs: Record<string, { callLegId: string; callId: string; participantId: string; bridge: string; deactivated: boolean }> = {};
let callIds: Record<'cms-1' | 'cms-2', string>;

before(async () => {
  control = await startControlStack();
  const { sim } = control;
  // Only guests, no host: everyone waits in the lobby, two on each bridge.
  const meeting = sim.startCall({ name: 'Town hall', bridges: [] });
  for (const [name, bridge] of [
    ['g1', 'cms-1'],
    ['g2', 'cms-1'],
    ['g3', 'cms-2'],
    ['g4', 'cms-2'],
  ] as const) {
    legs[name] = sim.join({ meeting, bridge, kind: 'guest', remoteParty: `${name}@far.example`, needsActivation: true });
  }
  callIds = { 'cms-1': meeting.callId('cms-1'), 'cms-2': meeting.callId('cms-2') };
  for (const l of Object.values(legs)) assert.equal(l.deactivated, true, 'a guest without a host waits');
  await cdrsArrived(['g1', 'g2', 'g3', 'g4']);
  await waiting(['g1', 'g2', 'g3', 'g4']);
});

function leg(name: string) {
  const l = legs[name];
  assert.ok(l, name);
  return l;
}

function inLobby(name: string): boolean {
  const l = leg(name);
  const found = control.sim.inspectCall(l.callId).legs.find((x) => x.id === l.callLegId);
  assert.ok(found, `${name} still in the call`);
  return found.deactivated;
}

/**
 * Waits until the CDRs of these guests' legs have arrived. The live roster of a meeting spanning bridges is taken on
 * one bridge and lists every bridge's participants: only the CDRs say which bridge hosts a leg (an operator never
 * acts within the milliseconds between the two).
 */
async function cdrsArrived(names: string[]): Promise<void> {
  for (const bridge of ['cms-1', 'cms-2'] as const) {
    const ids = names
      .map(leg)
      .filter((l) => l.bridge === bridge)
      .map((l) => l.callLegId);
    if (ids.length > 0) await knownCall(control, callIds[bridge], ids);
  }
}

/** Waits until GET /lobby lists exactly these of our guests. */
async function waiting(names: string[]): Promise<void> {
  const want = names.map((n) => leg(n).callLegId).sort();
  let last: unknown;
  await eventually(
    async () => {
      const res = await control.api('GET', '/lobby', undefined, { token: VIEWER_TOKEN });
      last = res.body;
      const ours = new Set(Object.values(legs).map((l) => l.callLegId));
      const listed = (res.body.participants as { callLegId: string }[]).map((p) => p.callLegId).filter((id) => ours.has(id));
      return JSON.stringify(listed.sort()) === JSON.stringify(want);
    },
    { what: `the lobby to list ${names.join(', ')}`, timeoutMs: 20_000, intervalMs: 50 },
  ).catch((err: Error) => assert.fail(`${err.message}; last answer ${JSON.stringify(last)}`));
}

async function applied(body: unknown) {
  const res = await control.api('POST', '/lobby/admit', body);
  assert.ok(res.status === 200 || res.status === 202, `${res.status} ${JSON.stringify(res.body)}`);
  const done = await control.outcome(res.body.id);
  assert.equal(done.status, 'applied', JSON.stringify(done));
  return done;
}

test('GET /lobby lists every guest waiting, on both bridges, with its node and participant id', async () => {
  const res = await control.api('GET', '/lobby', undefined, { token: VIEWER_TOKEN });
  for (const name of ['g1', 'g2', 'g3', 'g4']) {
    const entry = (res.body.participants as { callLegId: string; node: string; callId: string }[]).find(
      (p) => p.callLegId === leg(name).callLegId,
    );
    assert.ok(entry, name);
    assert.equal(entry.node, leg(name).bridge);
    assert.equal(entry.callId, leg(name).callId);
  }
});

test('admit one: only that guest is let in (PUT /participants/<id> deactivated=false on its bridge)', async () => {
  await applied({ participants: [leg('g1').callLegId] });
  assert.equal(inLobby('g1'), false);
  assert.equal(inLobby('g2'), true);
  const put = control.sim.writeLog({ bridge: 'cms-1', method: 'PUT', urlContains: `/participants/${leg('g1').participantId}` });
  assert.equal(put.at(-1)?.params.deactivated, 'false');
  await waiting(['g2', 'g3', 'g4']);
});

test('admitting someone no longer in the lobby is refused (409) and writes nothing', async () => {
  // Participant writes only: the security messages of the meeting may change meanwhile (g1 was just admitted).
  const admits = () => control.sim.writeLog({ urlContains: '/participants/' }).length;
  const before = admits();
  const res = await control.api('POST', '/lobby/admit', { participants: [leg('g1').callLegId, leg('g2').callLegId] });
  assert.equal(res.status, 409);
  assert.match(res.body.detail, new RegExp(`Not waiting in a lobby: ${leg('g1').callLegId}`));
  assert.equal(inLobby('g2'), true, 'nobody of the request was admitted');
  assert.equal(admits(), before);
});

test('admit a selection spanning both bridges: each admitted on its own bridge', async () => {
  const done = await applied({ participants: [leg('g2').callLegId, leg('g3').callLegId] });
  assert.deepEqual(done.steps.map((s) => s.node).sort(), ['cms-1', 'cms-2']);
  assert.equal(inLobby('g2'), false);
  assert.equal(inLobby('g3'), false);
  assert.equal(inLobby('g4'), true);
  await waiting(['g4']);
});

test('admit all of a call: everyone still waiting in its meeting, whichever bridge', async () => {
  // Two more guests arrive, one on each bridge, while g4 still waits.
  legs.g5 = control.sim.join({
    meeting: control.sim.meeting(callIds['cms-1']),
    bridge: 'cms-1',
    kind: 'guest',
    remoteParty: 'g5@far.example',
    needsActivation: true,
  });
  legs.g6 = control.sim.join({
    meeting: control.sim.meeting(callIds['cms-1']),
    bridge: 'cms-2',
    kind: 'guest',
    remoteParty: 'g6@far.example',
    needsActivation: true,
  });
  await cdrsArrived(['g5', 'g6']);
  await waiting(['g4', 'g5', 'g6']);
  await applied({ call: callIds['cms-1'], all: true });
  for (const name of ['g4', 'g5', 'g6']) assert.equal(inLobby(name), false, name);
  await waiting([]);
  const res = await control.api('POST', '/lobby/admit', { call: callIds['cms-2'], all: true });
  assert.equal(res.status, 409, 'nobody left to admit');
});
