import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RosterElement, type SimRecord, type Simulator, startSimulator } from '@cms/cms-sim';
import { Api, EventsClient, eventually, FAST_CDR, TestReceiver } from './helpers.ts';

/** What the model's change bus said about participants (the events feed's roster comes from it). */
interface RosterChange {
  kind: 'participantAdded' | 'participantUpdated' | 'participantRemoved';
  participant: string;
  elements: RosterElement[];
}

/**
 * Operator call control against the simulated CMS API (docs/cms-interfaces.md §2.3-2.4, issue #10 §3): every
 * write with its effect on the GETs, the CDRs, the roster changes and /inspect, and CMS's error answers.
 */
describe('call control', () => {
  let sim: Simulator;
  let receiver: TestReceiver;
  let api: Api;
  let api2: Api;
  const roster: RosterChange[] = [];

  before(async () => {
    receiver = await TestReceiver.start();
    sim = await startSimulator({
      bridges: [{ name: 'cms-1' }, { name: 'cms-2' }],
      seed: 77,
      cdrReceivers: [receiver.url()],
      cdr: FAST_CDR,
      controlPort: null,
      // Dial-outs ring until the test answers them, so each state can be looked at.
      dialOutAnswerMs: null,
    });
    api = new Api(sim.bridge('cms-1'));
    api2 = new Api(sim.bridge('cms-2'));
    sim.cluster.bus.on((change) => {
      if (change.kind === 'participantAdded' || change.kind === 'participantRemoved')
        roster.push({ kind: change.kind, participant: change.participant.id, elements: [] });
      if (change.kind === 'participantUpdated')
        roster.push({ kind: change.kind, participant: change.participant.id, elements: change.elements });
    });
  });
  after(async () => {
    await sim.stop();
    await receiver.close();
  });

  const rosterOf = (participantId: string): RosterChange[] => roster.filter((c) => c.participant === participantId);
  const recordsOf = (id: string, bridge = 'cms-1'): SimRecord[] => sim.cdrRecords(bridge).filter((r) => r.objectId === id);
  const legOf = (callId: string, legId: string) => sim.inspectCall(callId).legs.find((l) => l.id === legId);

  test('POST /calls/<id>/participants dials out: an outgoing leg rings, then connects when answered', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const host = sim.join({ meeting: m, bridge: 'cms-1' });
    const res = await api.post(`/calls/${host.callId}/participants`, { remoteParty: 'room42@example.com', chosenLayout: 'stacked' });
    assert.equal(res.status, 200);
    const location = res.headers.get('location') ?? '';
    assert.match(location, /^\/api\/v1\/participants\/[0-9a-f-]{36}$/);
    const participantId = location.split('/').at(-1) as string;

    const ringing = (await api.get(`/participants/${participantId}`)).xml.participant;
    assert.equal(ringing.uri, 'room42@example.com');
    assert.equal(ringing.remoteParty, undefined, 'participants have uri, not remoteParty');
    assert.equal(ringing.numCallLegs, '1');
    assert.equal(ringing.status.state, 'ringing');
    const legs = (await api.get(`/calls/${host.callId}/callLegs?participantFilter=${participantId}`)).xml.callLegs;
    assert.equal(legs['@total'], '1');
    const legId = legs.callLeg[0]['@id'];
    const leg = (await api.get(`/callLegs/${legId}`)).xml.callLeg;
    assert.deepEqual(
      [leg.direction, leg.status.state, leg.call, leg.configuration.chosenLayout],
      ['outgoing', 'ringing', host.callId, 'stacked'],
    );
    assert.deepEqual(
      recordsOf(legId).map((r) => r.type),
      ['callLegStart'],
      'no callLegUpdate while it rings',
    );
    assert.equal(recordsOf(legId)[0]?.body.call, host.callId, 'an outgoing leg names its call in callLegStart');
    assert.equal(recordsOf(legId)[0]?.body.direction, 'outgoing');
    assert.deepEqual(
      rosterOf(participantId).map((c) => c.kind),
      ['participantAdded'],
    );
    assert.equal(sim.inspectCall(host.callId).participants.find((p) => p.id === participantId)?.state, 'ringing');

    sim.answerDialOut(legId);
    assert.equal((await api.get(`/callLegs/${legId}`)).xml.callLeg.status.state, 'connected');
    assert.equal((await api.get(`/participants/${participantId}`)).xml.participant.status.state, 'connected');
    const update = recordsOf(legId).find((r) => r.type === 'callLegUpdate');
    assert.deepEqual([update?.body.state, update?.body.call], ['connected', host.callId]);
    assert.deepEqual(rosterOf(participantId).at(-1), { kind: 'participantUpdated', participant: participantId, elements: ['state'] });
    await sim.waitForCdrsDelivered();
    assert.deepEqual(
      receiver
        .acceptedRecords()
        .filter((r) => r.id === legId)
        .map((r) => r.type),
      ['callLegStart', 'callLegUpdate'],
      'the receiver gets the same records',
    );
    sim.endCall(m);
  });

  test('POST /calls/<id>/callLegs dials out with Location /callLegs/<id>; deactivated=false bypasses the lobby', async () => {
    const m = sim.startCall({ bridges: ['cms-1'], locked: true });
    const callId = m.callId('cms-1');
    const res = await api.post(`/calls/${callId}/callLegs`, { remoteParty: 'sip:0701234567@pstn.example.com', needsActivation: 'true' });
    assert.equal(res.status, 200);
    const legId = (res.headers.get('location') ?? '').split('/').at(-1) as string;
    assert.match(res.headers.get('location') ?? '', /^\/api\/v1\/callLegs\//);
    sim.answerDialOut(legId);
    assert.equal((await api.get(`/callLegs/${legId}`)).xml.callLeg.status.deactivated, 'true', 'needsActivation into a locked call: lobby');
    assert.equal(recordsOf(legId).find((r) => r.type === 'callLegUpdate')?.body.deactivated, 'true');

    const bypass = await api.post(`/calls/${callId}/callLegs`, { remoteParty: 'guest7', needsActivation: 'true', deactivated: 'false' });
    const bypassId = (bypass.headers.get('location') ?? '').split('/').at(-1) as string;
    sim.answerDialOut(bypassId);
    assert.equal((await api.get(`/callLegs/${bypassId}`)).xml.callLeg.status.deactivated, 'false');

    const held = await api.post(`/calls/${callId}/callLegs`, { remoteParty: 'held@example.com' });
    const heldId = (held.headers.get('location') ?? '').split('/').at(-1) as string;
    sim.moveToLobby(heldId);
    sim.answerDialOut(heldId);
    assert.deepEqual(
      recordsOf(heldId)
        .filter((r) => r.type === 'callLegUpdate')
        .map((r) => [r.body.state, r.body.deactivated]),
      [['connected', 'true']],
      'sent to the lobby while ringing: it answers into the lobby',
    );
    sim.endCall(m);
  });

  test('a dial-out connects by itself after dialOutAnswerMs', async () => {
    const own = await startSimulator({ seed: 3, controlPort: null, dialOutAnswerMs: 50 });
    try {
      const m = own.startCall();
      const res = await new Api(own.bridge('cms-1')).post(`/calls/${m.callId()}/callLegs`, { remoteParty: 'bob@example.com' });
      const legId = (res.headers.get('location') ?? '').split('/').at(-1) as string;
      await eventually(() => own.inspectCall(m.callId()).legs.find((l) => l.id === legId)?.state === 'connected', { what: 'the answer' });
      assert.deepEqual(
        own
          .cdrRecords()
          .filter((r) => r.objectId === legId)
          .map((r) => [r.type, r.body.state]),
        [
          ['callLegStart', undefined],
          ['callLegUpdate', 'connected'],
        ],
      );
    } finally {
      await own.stop();
    }
  });

  test('a dial-out that is not answered ends with the reason given and never connects', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    sim.join({ meeting: m, bridge: 'cms-1' });
    const res = await api.post(`/calls/${m.callId('cms-1')}/callLegs`, { remoteParty: 'busy@example.com' });
    const legId = (res.headers.get('location') ?? '').split('/').at(-1) as string;
    sim.leave(legId, 'remoteBusy');
    assert.deepEqual(
      recordsOf(legId).map((r) => [r.type, r.body.reason]),
      [
        ['callLegStart', undefined],
        ['callLegEnd', 'remoteBusy'],
      ],
    );
    assert.throws(() => sim.answerDialOut(legId), /no call leg/);
    sim.endCall(m);
  });

  test('an empty or malformed remoteParty is a parameterError and dials nobody', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const callId = m.callId('cms-1');
    const before = sim.cdrRecords('cms-1').length;
    const bad: (Record<string, string> | undefined)[] = [
      {},
      { remoteParty: '' },
      { remoteParty: '   ' },
      { remoteParty: 'alice smith@example.com' },
      { remoteParty: 'a@b@example.com' },
      { remoteParty: '@example.com' },
      { remoteParty: 'alice@' },
      { remoteParty: 'alice@exa mple.com' },
      { remoteParty: 'line\nbreak@example.com' },
      { remoteParty: `${'x'.repeat(300)}@example.com` },
    ];
    for (const params of bad) {
      for (const path of [`/calls/${callId}/participants`, `/calls/${callId}/callLegs`]) {
        const res = await api.post(path, params);
        assert.equal(res.status, 400, `${path} ${JSON.stringify(params)}`);
        assert.equal(res.xml.failureDetails.parameterError['@parameter'], 'remoteParty');
        assert.equal(res.headers.get('location'), null);
      }
    }
    assert.equal(sim.cdrRecords('cms-1').length, before, 'no leg was started');
    assert.equal(sim.inspectCall(callId).legs.length, 0);
    sim.endCall(m);
  });

  test('writes to an unknown call, leg or participant get 404 with the matching reason', async () => {
    const unknown = '00000000-0000-4000-8000-00000000dead';
    const cases: [() => ReturnType<Api['get']>, string][] = [
      [() => api.post(`/calls/${unknown}/participants`, { remoteParty: 'a@example.com' }), 'callDoesNotExist'],
      [() => api.post(`/calls/${unknown}/callLegs`, { remoteParty: 'a@example.com' }), 'callDoesNotExist'],
      [() => api.put(`/calls/${unknown}/participants/*`, { rxAudioMute: 'true' }), 'callDoesNotExist'],
      [() => api.delete(`/calls/${unknown}`), 'callDoesNotExist'],
      [() => api.put(`/callLegs/${unknown}`, { rxAudioMute: 'true' }), 'callLegDoesNotExist'],
      [() => api.delete(`/callLegs/${unknown}`), 'callLegDoesNotExist'],
      [() => api.put(`/participants/${unknown}`, { deactivated: 'false' }), 'participantDoesNotExist'],
    ];
    for (const [write, reason] of cases) {
      const res = await write();
      assert.equal(res.status, 404, reason);
      assert.match(res.text, new RegExp(`<failureDetails><${reason}/></failureDetails>`));
    }
  });

  test('PUT /callLegs/<id> mutes and layout: in the GET, in the roster changes, and in no CDR', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const alice = sim.join({ meeting: m, bridge: 'cms-1' });
    const records = recordsOf(alice.callLegId).length;
    const changes = rosterOf(alice.participantId).length;
    const res = await api.put(`/calllegs/${alice.callLegId}`, {
      rxAudioMute: 'true',
      txAudioMute: 'true',
      rxVideoMute: 'true',
      txVideoMute: 'true',
      chosenLayout: 'onePlusFive',
    });
    assert.equal(res.status, 200);
    const config = (await api.get(`/callLegs/${alice.callLegId}`)).xml.callLeg.configuration;
    assert.deepEqual(
      [config.rxAudioMute, config.txAudioMute, config.rxVideoMute, config.txVideoMute, config.chosenLayout],
      ['true', 'true', 'true', 'true', 'onePlusFive'],
    );
    const inspected = legOf(alice.callId, alice.callLegId);
    assert.deepEqual([inspected?.rxAudioMute, inspected?.txVideoMute, inspected?.chosenLayout], [true, true, 'onePlusFive']);
    const change = rosterOf(alice.participantId).slice(changes);
    assert.equal(change.length, 1, 'one roster change for one write');
    assert.deepEqual(new Set(change[0]?.elements), new Set(['audioMuted', 'videoMuted', 'layout']));
    assert.equal(recordsOf(alice.callLegId).length, records, 'CMS writes no callLegUpdate for mutes or layout');

    const again = rosterOf(alice.participantId).length;
    await api.put(`/callLegs/${alice.callLegId}`, { rxAudioMute: 'true' });
    assert.equal(rosterOf(alice.participantId).length, again, 'writing the same value changes nothing');
    await api.put(`/callLegs/${alice.callLegId}`, { rxAudioMute: 'false' });
    assert.equal((await api.get(`/callLegs/${alice.callLegId}`)).xml.callLeg.configuration.chosenLayout, 'onePlusFive', 'omitted keeps');
    assert.deepEqual(rosterOf(alice.participantId).at(-1)?.elements, ['audioMuted']);
    sim.endCall(m);
  });

  test('a layout outside Cisco’s list, a non-boolean mute or a non-numeric importance is a parameterError that changes nothing', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const alice = sim.join({ meeting: m, bridge: 'cms-1' });
    const before = rosterOf(alice.participantId).length;
    for (const [params, parameter] of [
      [{ chosenLayout: 'sideBySide' }, 'chosenLayout'],
      [{ layout: 'SPEAKERONLY' }, 'layout'],
      [{ rxAudioMute: 'yes', chosenLayout: 'allEqual' }, 'rxAudioMute'],
    ] as const) {
      const res = await api.put(`/callLegs/${alice.callLegId}`, params);
      assert.equal(res.status, 400);
      assert.equal(res.xml.failureDetails.parameterError['@parameter'], parameter);
    }
    assert.equal(legOf(alice.callId, alice.callLegId)?.chosenLayout, 'automatic');
    assert.equal(rosterOf(alice.participantId).length, before);
    const all = await api.put(`/calls/${alice.callId}/participants/*`, { chosenLayout: 'bogus' });
    assert.equal(all.status, 400);
    for (const importance of ['high', '-1', '1.5']) {
      const res = await api.put(`/participants/${alice.participantId}`, { importance });
      assert.equal(res.xml.failureDetails.parameterError['@parameter'], 'importance', importance);
    }
    const mode = await api.put(`/calls/${alice.callId}/participants/*`, { rxAudioMute: 'true', mode: 'everyone' });
    assert.equal(mode.xml.failureDetails.parameterError['@parameter'], 'mode');
    assert.equal(legOf(alice.callId, alice.callLegId)?.rxAudioMute, false);
    sim.endCall(m);
  });

  test('presenter mode through PUT participants/*: everyone speakerOnly and audio-muted but the presenter, then undone', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const presenter = sim.join({ meeting: m, bridge: 'cms-1' });
    const others = [sim.join({ meeting: m, bridge: 'cms-1' }), sim.join({ meeting: m, bridge: 'cms-1' })];
    const call = presenter.callId;
    assert.equal(
      (
        await api.put(`/calls/${call}/participants/*`, {
          chosenLayout: 'speakerOnly',
          rxAudioMute: 'true',
          filterIds: presenter.participantId,
        })
      ).status,
      200,
    );
    await api.put(`/calls/${call}/participants/*`, { importance: '100', filterIds: presenter.participantId, mode: 'selected' });
    await api.put(`/callLegs/${presenter.callLegId}`, { chosenLayout: 'speakerOnly' });
    for (const o of others) {
      const leg = (await api.get(`/callLegs/${o.callLegId}`)).xml.callLeg;
      assert.deepEqual(
        [leg.configuration.chosenLayout, leg.configuration.rxAudioMute, leg.status.layout],
        ['speakerOnly', 'true', 'speakerOnly'],
      );
      assert.deepEqual(new Set(rosterOf(o.participantId).at(-1)?.elements), new Set(['layout', 'audioMuted']));
    }
    assert.equal(legOf(call, presenter.callLegId)?.rxAudioMute, false);
    assert.equal((await api.get(`/participants/${presenter.participantId}`)).xml.participant.configuration.importance, '100');
    assert.deepEqual(rosterOf(presenter.participantId).at(-2)?.elements, ['importance']);

    await api.put(`/calls/${call}/participants/*`, { chosenLayout: '', rxAudioMute: 'false', importance: '' });
    for (const l of sim.inspectCall(call).legs) assert.deepEqual([l.chosenLayout, l.rxAudioMute], ['automatic', false]);
    assert.equal((await api.get(`/participants/${presenter.participantId}`)).xml.participant.configuration.importance, undefined);
    sim.endCall(m);
  });

  test('PUT /participants/<id>: importance under configuration; deactivated=false admits from the lobby', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const host = sim.join({ meeting: m, bridge: 'cms-1' });
    await api.put(`/calls/${host.callId}`, { locked: 'true' });
    const guest = sim.join({ meeting: m, bridge: 'cms-1', kind: 'guest' });
    assert.equal(guest.deactivated, true, 'locked: the guest waits');
    assert.equal((await api.put(`/participants/${guest.participantId}`, { importance: '7' })).status, 200);
    const detail = (await api.get(`/participants/${guest.participantId}`)).xml.participant;
    assert.equal(detail.configuration.importance, '7');
    assert.equal(detail.importance, undefined, 'importance sits under configuration');
    assert.equal(detail.numCallLegs, '1');
    assert.equal(detail.status.numCallLegs, undefined, 'numCallLegs is top level');
    assert.deepEqual(rosterOf(guest.participantId).at(-1)?.elements, ['importance']);

    assert.equal((await api.put(`/participants/${guest.participantId}`, { deactivated: 'false' })).status, 200);
    assert.equal((await api.get(`/callLegs/${guest.callLegId}`)).xml.callLeg.status.deactivated, 'false');
    const updates = recordsOf(guest.callLegId).filter((r) => r.type === 'callLegUpdate');
    assert.deepEqual(
      updates.map((r) => r.body.deactivated),
      ['true', 'false'],
    );
    // Cisco's roster has no lobby element: the admission changes nothing in it.
    assert.deepEqual(rosterOf(guest.participantId).at(-1)?.elements, ['importance']);
    assert.equal(sim.inspectCall(host.callId).participants.find((p) => p.id === guest.participantId)?.deactivated, false);
    sim.endCall(m);
  });

  test('PUT /participants/<id> deactivated=false for someone not in the lobby: 200, and nothing changes', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const host = sim.join({ meeting: m, bridge: 'cms-1' });
    const guest = sim.join({ meeting: m, bridge: 'cms-1', kind: 'guest' });
    assert.equal(guest.deactivated, false, 'an activator is present: the guest is in');
    const records = sim.cdrRecords('cms-1').length;
    const changes = roster.length;
    const res = await api.put(`/participants/${guest.participantId}`, { deactivated: 'false' });
    assert.equal(res.status, 200);
    assert.equal(sim.writeLog().at(-1)?.outcome, 'applied');
    assert.equal(sim.cdrRecords('cms-1').length, records, 'no callLegUpdate');
    assert.equal(roster.length, changes, 'no roster change');
    // Not marked as admitted either: when the last activator leaves, the guest goes back to the lobby as before.
    sim.leave(host.callLegId);
    assert.equal(legOf(guest.callId, guest.callLegId)?.deactivated, true);
    sim.endCall(m);
  });

  test('a participant hosted on another bridge refuses writes with participantCannotBeModified', async () => {
    const m = sim.startCall({ bridges: [] });
    sim.join({ meeting: m, bridge: 'cms-1' });
    const remote = sim.join({ meeting: m, bridge: 'cms-2' });
    const res = await api.put(`/participants/${remote.participantId}`, { deactivated: 'false' });
    assert.equal(res.status, 400);
    assert.match(res.text, /<participantCannotBeModified\/>/);
    assert.equal((await api2.put(`/participants/${remote.participantId}`, { importance: '3' })).status, 200, 'its own bridge takes it');
    sim.endCall(m);
  });

  test('DELETE /callLegs/<id>: callLegEnd apiInitiatedTeardown, the participant leaves the roster; a distribution link cannot be deleted', async () => {
    const m = sim.startCall({ bridges: [] });
    const stay = sim.join({ meeting: m, bridge: 'cms-1' });
    const drop = sim.join({ meeting: m, bridge: 'cms-1' });
    sim.join({ meeting: m, bridge: 'cms-2' });
    assert.equal((await api.delete(`/callLegs/${drop.callLegId}`)).status, 200);
    assert.equal((await api.get(`/callLegs/${drop.callLegId}`)).status, 404);
    assert.equal((await api.get(`/participants/${drop.participantId}`)).status, 404);
    const end = recordsOf(drop.callLegId).at(-1);
    assert.deepEqual([end?.type, end?.body.reason, end?.body.remoteTeardown], ['callLegEnd', 'apiInitiatedTeardown', 'false']);
    assert.equal(rosterOf(drop.participantId).at(-1)?.kind, 'participantRemoved');
    assert.equal(legOf(stay.callId, drop.callLegId), undefined);
    const link = sim.inspectCall(stay.callId).legs.find((l) => l.subType === 'distributionLink');
    const refused = await api.delete(`/callLegs/${link?.id}`);
    assert.equal(refused.status, 400);
    assert.match(refused.text, /<callLegCannotBeDeleted\/>/);
    sim.endCall(m);
  });

  test('DELETE /calls/<id>: every leg ends (callEnded), then callEnd; the roster empties and the GETs say 404', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const a = sim.join({ meeting: m, bridge: 'cms-1' });
    const b = sim.join({ meeting: m, bridge: 'cms-1', kind: 'app' });
    const ringing = await api.post(`/calls/${a.callId}/callLegs`, { remoteParty: 'late@example.com' });
    const ringingId = (ringing.headers.get('location') ?? '').split('/').at(-1) as string;
    assert.equal((await api.delete(`/calls/${a.callId}`)).status, 200);
    assert.equal((await api.get(`/calls/${a.callId}`)).status, 404);
    for (const legId of [a.callLegId, b.callLegId, ringingId]) {
      assert.equal((await api.get(`/callLegs/${legId}`)).status, 404);
      const end = recordsOf(legId).at(-1);
      assert.deepEqual([end?.type, end?.body.reason], ['callLegEnd', 'callEnded']);
    }
    assert.equal(recordsOf(a.callId).at(-1)?.type, 'callEnd');
    assert.equal(recordsOf(a.callId).at(-1)?.body.callLegsCompleted, '3');
    for (const p of [a.participantId, b.participantId]) assert.equal(rosterOf(p).at(-1)?.kind, 'participantRemoved');
    assert.equal(
      sim.inspect().bridges[0]?.calls.some((c) => c.id === a.callId),
      false,
    );
    assert.equal(m.ended, true);
  });

  test('content sharing: presenterCallLeg in GET /calls, presenter in the roster, presentationContributor in callLegEnd', async () => {
    const m = sim.startCall({ bridges: [] });
    const alice = sim.join({ meeting: m, bridge: 'cms-1' });
    const bob = sim.join({ meeting: m, bridge: 'cms-2' });
    sim.shareContent(alice.callLegId);
    assert.equal((await api.get(`/calls/${alice.callId}`)).xml.call.presenterCallLeg, alice.callLegId);
    assert.equal((await api2.get(`/calls/${bob.callId}`)).xml.call.presenterCallLeg, undefined, 'the presenter is on the other bridge');
    assert.deepEqual(rosterOf(alice.participantId).at(-1)?.elements, ['presenter']);
    assert.equal(sim.inspectCall(alice.callId).presenter, alice.callLegId);
    assert.equal(legOf(alice.callId, alice.callLegId)?.presenter, true);

    sim.shareContent(bob.callLegId);
    assert.deepEqual(rosterOf(alice.participantId).at(-1)?.elements, ['presenter'], 'a new presenter takes over');
    assert.equal(sim.inspectCall(alice.callId).presenter, bob.callLegId);
    assert.equal((await api.get(`/calls/${alice.callId}`)).xml.call.presenterCallLeg, undefined);
    assert.equal((await api2.get(`/calls/${bob.callId}`)).xml.call.presenterCallLeg, bob.callLegId);

    sim.setActiveSpeaker(alice.callLegId);
    assert.deepEqual(rosterOf(alice.participantId).at(-1)?.elements, ['activeSpeaker']);
    assert.equal(sim.inspectCall(alice.callId).activeSpeaker, alice.callLegId);
    sim.setActiveSpeaker(null, { meeting: m.callCorrelator });
    assert.equal(sim.inspectCall(alice.callId).activeSpeaker, null);

    sim.shareContent(bob.callLegId, false);
    assert.equal(sim.inspectCall(alice.callId).presenter, null);
    sim.leave(alice.callLegId);
    const usage = recordsOf(alice.callLegId).at(-1)?.body.mediaUsagePercentages as Record<string, string> | undefined;
    assert.ok(Number(usage?.presentationContributor) > 0, 'alice presented for part of her call');
    sim.shareContent(bob.callLegId);
    sim.moveToLobby(bob.callLegId);
    assert.equal(sim.inspectCall(bob.callId).presenter, null, 'sent to the lobby: the presentation stops');
    assert.deepEqual(
      rosterOf(bob.participantId)
        .slice(-2)
        .map((c) => c.elements),
      // Presenting, then not (the lobby itself shows in no roster element).
      [['presenter'], ['presenter']],
    );
    assert.throws(() => sim.shareContent(bob.callLegId), /cannot share content/);
    sim.endCall(m);
  });

  test('the events roster shows a dial-out ringing then connected, the presenter and the active speaker', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const alice = sim.join({ meeting: m, bridge: 'cms-1' });
    const client = await EventsClient.connect(sim.bridge('cms-1'));
    try {
      client.subscribe([
        { index: 1, type: 'callRoster', call: alice.callId, elements: ['state', 'direction', 'presenter', 'activeSpeaker'] },
      ]);
      const updates = (participant: string) =>
        client
          .messages('rosterUpdate')
          .flatMap((x) => x.updates)
          .filter((u: { participant: string }) => u.participant === participant);
      await eventually(() => updates(alice.participantId).length === 1, { what: 'the initial roster' });
      const res = await api.post(`/calls/${alice.callId}/participants`, { remoteParty: 'room7@example.com' });
      const participantId = (res.headers.get('location') ?? '').split('/').at(-1) as string;
      await eventually(() => updates(participantId).length === 1, { what: 'the ringing participant' });
      assert.deepEqual(updates(participantId)[0], {
        participant: participantId,
        updateType: 'add',
        state: 'ringing',
        direction: 'outgoing',
        presenter: false,
        activeSpeaker: false,
      });
      const legId = sim.inspectCall(alice.callId).legs.find((l) => l.participantId === participantId)?.id as string;
      sim.answerDialOut(legId);
      await eventually(() => updates(participantId).some((u: { state?: string }) => u.state === 'connected'), { what: 'connected' });
      sim.shareContent(alice.callLegId);
      sim.setActiveSpeaker(legId);
      await eventually(() => updates(alice.participantId).some((u: { presenter?: boolean }) => u.presenter === true), {
        what: 'presenter',
      });
      await eventually(() => updates(participantId).some((u: { activeSpeaker?: boolean }) => u.activeSpeaker === true), {
        what: 'active speaker',
      });
    } finally {
      client.close();
    }
    sim.endCall(m);
  });

  test('failWrites: the next matching write gets the chosen failureDetails, changes nothing, and is logged as failed', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const alice = sim.join({ meeting: m, bridge: 'cms-1' });
    const armed = sim.failWrites({
      bridge: 'cms-1',
      failureReason: 'callLegDoesNotExist',
      method: 'PUT',
      urlContains: '/callLegs/',
      times: 2,
    });
    assert.deepEqual(
      armed.map((a) => [a.status, a.remaining]),
      [[404, 2]],
    );
    assert.equal(sim.inspect().bridges[0]?.writeFailures.length, 1);
    const since = sim.writeLog().at(-1)?.seq ?? 0;
    for (let i = 0; i < 2; i++) {
      const res = await api.put(`/callLegs/${alice.callLegId}`, { rxAudioMute: 'true' });
      assert.equal(res.status, 404);
      assert.match(res.text, /<failureDetails><callLegDoesNotExist\/><\/failureDetails>/);
    }
    assert.equal(legOf(alice.callId, alice.callLegId)?.rxAudioMute, false, 'the model was not touched');
    assert.equal((await api.put(`/callLegs/${alice.callLegId}`, { rxAudioMute: 'true' })).status, 200, 'used up after two');
    assert.deepEqual(
      sim.writeLog({ sinceSeq: since }).map((w) => [w.outcome, w.failureReason ?? null]),
      [
        ['failed', 'callLegDoesNotExist'],
        ['failed', 'callLegDoesNotExist'],
        ['applied', null],
      ],
    );

    sim.failWrites({ failureReason: 'parameterError', parameter: 'remoteParty', method: 'POST' });
    const refused = await api.post(`/calls/${alice.callId}/participants`, { remoteParty: 'fine@example.com' });
    assert.equal(refused.status, 400);
    assert.equal(refused.xml.failureDetails.parameterError['@parameter'], 'remoteParty');
    assert.equal(sim.inspectCall(alice.callId).legs.length, 1, 'nobody was dialled');
    assert.equal(sim.inspect().bridges[1]?.writeFailures.length, 1, 'armed on every bridge when none is named');
    sim.clearWriteFailures();
    assert.equal(sim.inspect().bridges[1]?.writeFailures.length, 0);
    assert.throws(() => sim.failWrites({ failureReason: '<bad>' }), RangeError);
    sim.endCall(m);
  });

  test('call-control writes count against the write ceiling like any other write', async () => {
    const m = sim.startCall({ bridges: ['cms-2'] });
    const alice = sim.join({ meeting: m, bridge: 'cms-2' });
    const violations = sim.inspect().bridges[1]?.counters.writeViolations ?? 0;
    sim.setFaults({ maxWritesPerSecond: 0 }, { bridge: 'cms-2' });
    try {
      const writes = [
        () => api2.put(`/callLegs/${alice.callLegId}`, { rxAudioMute: 'true' }),
        () => api2.put(`/calls/${alice.callId}/participants/*`, { chosenLayout: 'speakerOnly' }),
        () => api2.put(`/participants/${alice.participantId}`, { importance: '2' }),
        () => api2.post(`/calls/${alice.callId}/participants`, { remoteParty: 'x@example.com' }),
        () => api2.delete(`/callLegs/${alice.callLegId}`),
      ];
      for (const write of writes) {
        const res = await write();
        assert.equal(res.status, 503);
        assert.match(res.text, /<databaseNotReady\/>/);
      }
      assert.equal((sim.inspect().bridges[1]?.counters.writeViolations ?? 0) - violations, writes.length);
      const leg = legOf(alice.callId, alice.callLegId);
      assert.deepEqual([leg?.rxAudioMute, leg?.chosenLayout], [false, 'automatic'], 'refused writes change nothing');
    } finally {
      sim.setFaults({ maxWritesPerSecond: null }, { bridge: 'cms-2' });
    }
    sim.endCall(m);
  });

  test('the control API arms write failures and drives dial-outs, content sharing and the lobby for out-of-process tests', async () => {
    const own = await startSimulator({ seed: 4, dialOutAnswerMs: null });
    try {
      const control = own.controlUrl as string;
      const post = async (path: string, body: unknown) => {
        const res = await fetch(control + path, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: res.status, json: (await res.json()) as { status: number }[] };
      };
      const m = own.startCall();
      const alice = own.join({ meeting: m });
      const ownApi = new Api(own.bridge('cms-1'));
      const dial = await ownApi.post(`/calls/${m.callId()}/callLegs`, { remoteParty: 'carol@example.com' });
      const legId = (dial.headers.get('location') ?? '').split('/').at(-1) as string;
      assert.equal((await post('/driver/answerDialOut', { args: [legId] })).status, 200);
      assert.equal((await post('/driver/shareContent', { args: [alice.callLegId] })).status, 200);
      assert.equal((await post('/driver/moveToLobby', { args: [legId] })).status, 200);
      const call = own.inspectCall(m.callId());
      assert.equal(call.presenter, alice.callLegId);
      assert.deepEqual(
        call.legs.filter((l) => l.id === legId).map((l) => [l.state, l.deactivated]),
        [['connected', true]],
      );
      const armed = await post('/write-failures', { failureReason: 'participantLimitReached', urlContains: '/participants' });
      assert.equal(armed.status, 200);
      assert.equal(armed.json[0]?.status, 400);
      const refused = await ownApi.post(`/calls/${m.callId()}/participants`, { remoteParty: 'dave@example.com' });
      assert.equal(refused.status, 400);
      assert.match(refused.text, /<failureDetails><participantLimitReached\/><\/failureDetails>/);
      assert.equal((await post('/write-failures', {})).status, 400, 'a reason is required');
      assert.equal((await fetch(`${control}/write-failures`, { method: 'DELETE' })).status, 200);
    } finally {
      await own.stop();
    }
  });
});
