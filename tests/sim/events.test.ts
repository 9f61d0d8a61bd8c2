import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { EventsClient, eventually } from './helpers.ts';

/** Events over WebSocket (docs/cms-interfaces.md §3). */
describe('events', () => {
  let sim: Simulator;
  const clients: EventsClient[] = [];

  before(async () => {
    sim = await startSimulator({ bridges: [{ name: 'cms-1' }, { name: 'cms-2' }], seed: 41, controlPort: null });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await eventually(() => sim.eventsStats().every((s) => s.connections.length === 0), { what: 'connections closed' });
  });
  after(async () => {
    await sim.stop();
  });

  async function connect(bridge = 'cms-1'): Promise<EventsClient> {
    const c = await EventsClient.connect(sim.bridge(bridge));
    clients.push(c);
    return c;
  }

  test('POST /api/v1/authTokens answers 200 with X-Cisco-CMS-Auth-Token; the WebSocket refuses other tokens', async () => {
    const token = await EventsClient.token(sim.bridge('cms-1'));
    assert.ok(token.length >= 16);
    await assert.rejects(EventsClient.connect(sim.bridge('cms-1'), 'not-a-token'), /401/);
    const res = await fetch(`${sim.bridge('cms-1').url}/api/v1/authTokens`, { method: 'POST' });
    assert.equal(res.status, 401, 'tokens need Basic auth');
  });

  test('a calls subscription is acknowledged, becomes active and reports calls as they start, change and end', async () => {
    const existing = sim.startCall({ name: 'Existing', bridges: ['cms-1'] });
    const callId = existing.callId('cms-1');
    const client = await connect();
    const requestId = client.subscribe([{ index: 3, type: 'calls', elements: ['name', 'participants', 'lockState'] }]);
    await eventually(() => client.messages('callListUpdate').length >= 1, { what: 'initial callListUpdate' });
    assert.deepEqual(client.ackFor(requestId), { messageId: requestId, status: 'success' });
    const [update] = client.messages('subscriptionUpdate');
    assert.deepEqual(update.subscriptions, [{ index: 3, type: 'calls', elements: ['name', 'participants', 'lockState'], state: 'active' }]);
    const initial = client.messages('callListUpdate')[0];
    assert.equal(initial.subscriptionIndex, 3);
    assert.deepEqual(
      initial.updates.find((u: { call: string }) => u.call === callId),
      { call: callId, updateType: 'add', name: 'Existing', participants: 0, lockState: 'unlocked' },
    );
    sim.join({ meeting: existing, bridge: 'cms-1' });
    await eventually(
      () =>
        client
          .messages('callListUpdate')
          .flatMap((m) => m.updates)
          .some((u: { updateType: string; participants: number }) => u.updateType === 'update' && u.participants === 1),
      { what: 'participants update' },
    );
    sim.endCall(existing);
    await eventually(
      () =>
        client
          .messages('callListUpdate')
          .flatMap((m) => m.updates)
          .some((u: { updateType: string; call: string }) => u.updateType === 'remove' && u.call === callId),
      { what: 'remove' },
    );
    // Messages are numbered by CMS, one after another.
    const ids = client.messages().map((m) => m.messageId);
    assert.deepEqual(
      ids,
      ids.map((_, i) => i + 1),
    );
  });

  test('a callRoster subscription reports participants joining, changing and leaving', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const callId = m.callId('cms-1');
    const client = await connect();
    client.subscribe([{ index: 1, type: 'callRoster', call: callId, elements: ['name', 'uri', 'state', 'audioMuted', 'importance'] }]);
    await eventually(() => client.messages('subscriptionUpdate').length === 1, { what: 'subscriptionUpdate' });
    const alice = sim.join({ meeting: m, bridge: 'cms-1', remoteParty: 'alice@example.com', displayName: 'Alice' });
    await eventually(() => client.messages('rosterUpdate').length >= 1, { what: 'rosterUpdate add' });
    assert.deepEqual(client.messages('rosterUpdate')[0].updates, [
      {
        participant: alice.participantId,
        updateType: 'add',
        name: 'Alice',
        uri: 'alice@example.com',
        state: 'connected',
        audioMuted: false,
        importance: 0,
      },
    ]);
    sim.updateCallLeg(alice.callLegId, { rxAudioMute: true });
    await eventually(
      () =>
        client
          .messages('rosterUpdate')
          .flatMap((x) => x.updates)
          .some((u: { updateType: string; audioMuted: boolean }) => u.updateType === 'update' && u.audioMuted),
      { what: 'mute update' },
    );
    sim.join({ meeting: m, bridge: 'cms-1' });
    sim.leave(alice.callLegId);
    await eventually(
      () =>
        client
          .messages('rosterUpdate')
          .flatMap((x) => x.updates)
          .some((u: { updateType: string; participant: string }) => u.updateType === 'remove' && u.participant === alice.participantId),
      { what: 'remove' },
    );
    sim.endCall(m);
  });

  test("Cisco's callRoster elements have no lobby one: `deactivated`, asked for, is never sent; the lobby shows in CDRs and the API", async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const callId = m.callId('cms-1');
    const client = await connect();
    client.subscribe([{ index: 1, type: 'callRoster', call: callId, elements: ['name', 'state', 'canMoveToLobby', 'deactivated'] }]);
    await eventually(() => client.messages('subscriptionUpdate').length === 1, { what: 'subscriptionUpdate' });
    // Alone, with no activator: the guest waits in the lobby.
    const guest = sim.join({ meeting: m, bridge: 'cms-1', kind: 'guest', displayName: 'Guest', needsActivation: true });
    assert.equal(guest.deactivated, true);
    const mine = () =>
      client
        .messages('rosterUpdate')
        .flatMap((x) => x.updates)
        .filter((u: { participant: string }) => u.participant === guest.participantId);
    await eventually(() => mine().length === 1, { what: 'the guest added' });
    assert.deepEqual(mine()[0], {
      participant: guest.participantId,
      updateType: 'add',
      name: 'Guest',
      state: 'connected',
      canMoveToLobby: true,
    });
    sim.admit(guest.participantId);
    assert.equal(sim.inspectCall(callId).legs.find((l) => l.id === guest.callLegId)?.deactivated, false, 'admitted');
    assert.ok(
      sim.cdrRecords('cms-1').some((r) => r.type === 'callLegUpdate' && r.objectId === guest.callLegId && r.body.deactivated === 'false'),
      'the admission is in the CDRs',
    );
    // A change the roster does carry comes through; nothing about the lobby ever did.
    sim.updateParticipant(guest.participantId, { nameLabelOverride: 'Admitted guest' });
    await eventually(() => mine().length === 2, { what: 'the name change' });
    assert.deepEqual(mine()[1], { participant: guest.participantId, updateType: 'update', name: 'Admitted guest' });
    sim.endCall(m);
  });

  test('roster, call list and callInfo updates carry only the elements that changed (adds carry every subscribed element)', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const callId = m.callId('cms-1');
    const bob = sim.join({ meeting: m, bridge: 'cms-1', remoteParty: 'bob@example.com', displayName: 'Bob' });
    const client = await connect();
    client.subscribe([
      { index: 1, type: 'callRoster', call: callId, elements: ['name', 'uri', 'state', 'audioMuted', 'videoMuted', 'layout'] },
      { index: 2, type: 'calls', elements: ['name', 'participants', 'lockState'] },
      { index: 3, type: 'callInfo', call: callId, elements: ['name', 'participants', 'lockState'] },
    ]);
    const updates = (type: string, key: string) =>
      client
        .messages(type)
        .flatMap((x) => x.updates)
        .filter((u: Record<string, unknown>) => u[key] === (key === 'call' ? callId : bob.participantId));
    await eventually(() => updates('rosterUpdate', 'participant').length === 1 && client.messages('callInfoUpdate').length === 1, {
      what: 'initial lists',
    });
    assert.deepEqual(updates('rosterUpdate', 'participant')[0], {
      participant: bob.participantId,
      updateType: 'add',
      name: 'Bob',
      uri: 'bob@example.com',
      state: 'connected',
      audioMuted: false,
      videoMuted: false,
      layout: 'automatic',
    });
    sim.updateCallLeg(bob.callLegId, { rxAudioMute: true });
    await eventually(() => updates('rosterUpdate', 'participant').length === 2, { what: 'mute update' });
    assert.deepEqual(updates('rosterUpdate', 'participant')[1], { participant: bob.participantId, updateType: 'update', audioMuted: true });
    sim.updateCallLeg(bob.callLegId, { chosenLayout: 'speakerOnly' });
    await eventually(() => updates('rosterUpdate', 'participant').length === 3, { what: 'layout update' });
    assert.deepEqual(updates('rosterUpdate', 'participant')[2], {
      participant: bob.participantId,
      updateType: 'update',
      layout: 'speakerOnly',
    });

    sim.updateCall(callId, { locked: true });
    await eventually(() => updates('callListUpdate', 'call').some((u: { updateType: string }) => u.updateType === 'update'), {
      what: 'call list update',
    });
    assert.deepEqual(updates('callListUpdate', 'call').at(-1), { call: callId, updateType: 'update', lockState: 'locked' });
    await eventually(() => client.messages('callInfoUpdate').length === 2, { what: 'callInfo update' });
    assert.deepEqual(client.messages('callInfoUpdate')[1].callInfo, { call: callId, lockState: 'locked' });
    sim.endCall(m);
  });

  test('with the events service off /events/v1 answers 404; dropped connections leave tokens valid', async () => {
    const client = await connect('cms-2');
    const token = await EventsClient.token(sim.bridge('cms-2'));
    sim.dropEventsConnections({ bridge: 'cms-2' });
    await eventually(() => client.closeCode !== null, { what: 'dropped' });
    assert.equal(client.closeCode, 1006, 'no close frame');
    const again = await EventsClient.connect(sim.bridge('cms-2'), token);
    clients.push(again);
    sim.setEventsEnabled(false, { bridge: 'cms-2' });
    await eventually(() => again.closeCode !== null, { what: 'dropped when switched off' });
    await assert.rejects(EventsClient.connect(sim.bridge('cms-2'), token), /404/);
    sim.setEventsEnabled(true, { bridge: 'cms-2' });
    clients.push(await EventsClient.connect(sim.bridge('cms-2'), token));
  });

  test('callRoster and callInfo subscriptions are deactivated when the call leaves the bridge', async () => {
    const m = sim.startCall({ bridges: ['cms-2'] });
    const callId = m.callId('cms-2');
    const client = await connect('cms-2');
    client.subscribe([
      { index: 1, type: 'callInfo', call: callId, elements: ['name', 'participants', 'joinAudioMuteOverride'] },
      { index: 2, type: 'callRoster', call: callId, elements: ['name'] },
    ]);
    await eventually(() => client.messages('callInfoUpdate').length === 1, { what: 'callInfoUpdate' });
    assert.deepEqual(client.messages('callInfoUpdate')[0].callInfo, {
      call: callId,
      name: m.name,
      participants: 0,
      joinAudioMuteOverride: false,
    });
    sim.endCall(m);
    await eventually(
      () =>
        client
          .messages('subscriptionUpdate')
          .flatMap((x) => x.subscriptions)
          .filter((s: { state: string }) => s.state === 'deactivated').length === 2,
      { what: 'both deactivated' },
    );
  });

  test('a subscription to a call the bridge does not host is deactivated at once', async () => {
    const client = await connect();
    client.subscribe([{ index: 9, type: 'callRoster', call: '00000000-0000-4000-8000-000000000000', elements: ['name'] }]);
    await eventually(() => client.messages('subscriptionUpdate').length === 1, { what: 'subscriptionUpdate' });
    assert.equal(client.messages('subscriptionUpdate')[0].subscriptions[0].state, 'deactivated');
  });

  test('a client that stops acknowledging gets no further messages until it acknowledges', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const client = await connect();
    client.subscribe([{ index: 1, type: 'calls', elements: ['participants'] }]);
    await eventually(() => client.messages('callListUpdate').length >= 1, { what: 'initial list' });
    client.autoAck = false;
    sim.join({ meeting: m, bridge: 'cms-1' }); // sent, but left unacknowledged
    await eventually(() => client.messages('callListUpdate').length >= 2, { what: 'the unacknowledged message' });
    const countBefore = client.received.length;
    const unacked = client.messages().at(-1).messageId as number;
    sim.join({ meeting: m, bridge: 'cms-1' });
    sim.join({ meeting: m, bridge: 'cms-1' });
    const stats = () => sim.eventsStats('cms-1')[0]?.connections[0];
    await eventually(() => (stats()?.pendingUpdates ?? 0) > 0, { what: 'updates held back' });
    assert.equal(stats()?.awaitingAck, unacked);
    assert.equal(client.received.length, countBefore, 'nothing more was sent');
    client.ack(unacked);
    await eventually(() => client.received.length > countBefore, { what: 'the held-back update' });
    const next = client.messages().at(-1);
    assert.equal(next.type, 'callListUpdate');
    assert.deepEqual(next.updates, [{ call: m.callId('cms-1'), updateType: 'update', participants: 3 }], 'coalesced to the latest state');
    client.ack(next.messageId);
    sim.endCall(m);
  });

  test('a sixth WebSocket connection to one bridge is refused', async () => {
    for (let i = 0; i < 5; i++) await connect('cms-2');
    await assert.rejects(EventsClient.connect(sim.bridge('cms-2')), /503/);
    assert.equal(sim.eventsStats('cms-2')[0]?.connections.length, 5);
    assert.ok((sim.eventsStats('cms-2')[0]?.refusedConnections ?? 0) >= 1);
    const other = await connect('cms-1');
    assert.ok(other, 'the limit is per bridge');
  });

  test('a subscribe request with more than 100 subscriptions is rejected and changes nothing', async () => {
    const client = await connect();
    const ok = client.subscribe(
      Array.from({ length: 100 }, (_, i) => ({ index: i, type: 'callRoster', call: `c${i}`, elements: ['name'] })),
    );
    await eventually(() => client.ackFor(ok), { what: 'ack' });
    assert.equal(client.ackFor(ok).status, 'success');
    const tooMany = client.subscribe(
      Array.from({ length: 101 }, (_, i) => ({ index: i, type: 'callRoster', call: `d${i}`, elements: ['name'] })),
    );
    await eventually(() => client.ackFor(tooMany), { what: 'ack' });
    assert.equal(client.ackFor(tooMany).status, 'failure');
    assert.equal(sim.eventsStats('cms-1')[0]?.connections[0]?.subscriptions, 100);
  });

  test('an empty subscription set unsubscribes everything', async () => {
    const client = await connect();
    client.subscribe([{ index: 1, type: 'calls', elements: ['name'] }]);
    await eventually(() => client.messages('subscriptionUpdate').length === 1, { what: 'subscribed' });
    const id = client.subscribe([]);
    await eventually(() => client.ackFor(id), { what: 'ack' });
    assert.equal(sim.eventsStats('cms-1')[0]?.connections[0]?.subscriptions, 0);
    const before = client.received.length;
    const m = sim.startCall({ bridges: ['cms-1'] });
    const last = sim.eventsStats('cms-1')[0]?.connections[0];
    assert.equal(last?.pendingUpdates, 0);
    assert.equal(client.received.length, before);
    sim.endCall(m);
  });

  test('the bridge does not do ping/pong: a ping closes the connection', async () => {
    const client = await connect();
    client.socket.ping();
    await eventually(() => client.closeCode !== null, { what: 'close' });
    assert.equal(client.closeCode, 1003);
  });

  test('a restart drops event connections and invalidates tokens', async () => {
    const client = await connect('cms-2');
    const token = await EventsClient.token(sim.bridge('cms-2'));
    sim.restartBridge('cms-2');
    await eventually(() => client.closeCode !== null, { what: 'close' });
    await assert.rejects(EventsClient.connect(sim.bridge('cms-2'), token), /401/);
  });
});
