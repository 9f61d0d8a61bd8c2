import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { Api, FAST_CDR, TestReceiver } from './helpers.ts';

/** Lobby rules (docs/cms-interfaces.md §2.4): needsActivation, activators, admission, locked calls. */
describe('lobby', () => {
  let sim: Simulator;
  let receiver: TestReceiver;
  let api: Api;

  before(async () => {
    receiver = await TestReceiver.start();
    sim = await startSimulator({ seed: 31, cdrReceivers: [receiver.url()], cdr: FAST_CDR, controlPort: null });
    api = new Api(sim.bridges[0] as never);
  });
  after(async () => {
    await sim.stop();
    await receiver.close();
  });

  async function deactivated(legId: string): Promise<string> {
    return (await api.get(`/callLegs/${legId}`)).xml.callLeg.status.deactivated;
  }

  async function lobbyUpdates(legId: string): Promise<string[]> {
    await sim.waitForCdrsDelivered();
    return receiver
      .acceptedRecords()
      .filter((r) => r.type === 'callLegUpdate' && r.id === legId && r.body.deactivated !== undefined)
      .map((r) => r.body.deactivated);
  }

  test('a needsActivation participant waits deactivated until an activator joins', async () => {
    const m = sim.startCall();
    const guest = sim.join({ meeting: m, kind: 'guest', needsActivation: true });
    assert.equal(guest.deactivated, true);
    assert.equal(await deactivated(guest.callLegId), 'true');
    sim.join({ meeting: m, kind: 'sip', needsActivation: false });
    assert.equal(await deactivated(guest.callLegId), 'false');
    assert.deepEqual(await lobbyUpdates(guest.callLegId), ['true', 'false'], 'CDRs show the wait and the activation');
    sim.endCall(m);
  });

  test('PUT /participants/<id> deactivated=false admits a waiting participant', async () => {
    const m = sim.startCall();
    const guest = sim.join({ meeting: m, kind: 'guest' });
    const other = sim.join({ meeting: m, kind: 'guest' });
    assert.equal((await api.put(`/participants/${guest.participantId}`, { deactivated: 'false' })).status, 200);
    assert.equal(await deactivated(guest.callLegId), 'false');
    assert.equal(await deactivated(other.callLegId), 'true', 'admitting one leaves the others waiting');
    const participant = (await api.get(`/participants/${other.participantId}`)).xml.participant;
    assert.equal(participant.status.deactivated, 'true');
    sim.endCall(m);
  });

  test('a locked call sends new non-activators to the lobby even with an activator present; those already in stay', async () => {
    const m = sim.startCall();
    const host = sim.join({ meeting: m, kind: 'app', needsActivation: false });
    const early = sim.join({ meeting: m, kind: 'guest' });
    assert.equal(early.deactivated, false);
    assert.equal((await api.put(`/calls/${host.callId}`, { locked: 'true' })).status, 200);
    assert.equal((await api.get(`/calls/${host.callId}`)).xml.call.locked, 'true');
    const late = sim.join({ meeting: m, kind: 'guest' });
    const member = sim.join({ meeting: m, kind: 'sip', needsActivation: false });
    assert.equal(late.deactivated, true);
    assert.equal(member.deactivated, false, 'activators are not held by the lock');
    assert.equal(await deactivated(early.callLegId), 'false');
    await api.put(`/calls/${host.callId}`, { locked: 'false' });
    assert.equal(await deactivated(late.callLegId), 'false', 'unlocking lets the waiting in while an activator is present');
    sim.endCall(m);
  });

  test('when the last activator leaves, the others go back to the lobby', async () => {
    const m = sim.startCall();
    const host = sim.join({ meeting: m, needsActivation: false });
    const guest = sim.join({ meeting: m, kind: 'guest' });
    assert.equal(guest.deactivated, false);
    sim.leave(host.callLegId);
    assert.equal(await deactivated(guest.callLegId), 'true');
    sim.endCall(m);
  });

  test('PUT /callLegs/<id> needsActivation=false turns a waiting leg into an activator', async () => {
    const m = sim.startCall();
    const a = sim.join({ meeting: m, kind: 'guest' });
    const b = sim.join({ meeting: m, kind: 'guest' });
    await api.put(`/callLegs/${a.callLegId}`, { needsActivation: 'false' });
    assert.equal(await deactivated(a.callLegId), 'false');
    assert.equal(await deactivated(b.callLegId), 'false', 'the new activator lets the others in');
    sim.endCall(m);
  });

  test('POST /calls/<id>/participants with deactivated=false bypasses the lobby', async () => {
    const m = sim.startCall({ locked: true });
    const res = await api.post(`/calls/${m.callId()}/participants`, {
      remoteParty: 'vip@example.com',
      needsActivation: 'true',
      deactivated: 'false',
    });
    const id = (res.headers.get('location') ?? '').split('/').at(-1) as string;
    const leg = sim.inspectCall(m.callId()).legs.find((l) => l.participantId === id);
    assert.equal(leg?.needsActivation, true);
    assert.equal(leg?.deactivated, false);
    sim.endCall(m);
  });
});
