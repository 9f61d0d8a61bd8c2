import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { Api, FAST_CDR, TestReceiver } from './helpers.ts';

/** The REST API subset of docs/cms-interfaces.md §2 (XML shapes, paging, errors, writes). */
describe('CMS API', () => {
  let sim: Simulator;
  let receiver: TestReceiver;
  let api: Api;
  let api2: Api;

  before(async () => {
    receiver = await TestReceiver.start();
    sim = await startSimulator({
      bridges: [
        { name: 'cms-1', username: 'apiuser', password: 'pw-1' },
        { name: 'cms-2', username: 'apiuser', password: 'pw-2' },
      ],
      seed: 21,
      pageCap: 3,
      cdrReceivers: [receiver.url()],
      cdr: FAST_CDR,
      controlPort: null,
    });
    api = new Api(sim.bridge('cms-1'));
    api2 = new Api(sim.bridge('cms-2'));
  });
  after(async () => {
    await sim.stop();
    await receiver.close();
  });

  test('wrong credentials get 401 with a Basic challenge; each bridge has its own', async () => {
    const wrong = new Api(sim.bridge('cms-1'), { username: 'apiuser', password: 'pw-2' });
    const res = await wrong.get('/calls');
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic/);
    assert.equal((await api.get('/calls')).status, 200);
    assert.equal((await api2.get('/calls')).status, 200);
  });

  test('GET /calls lists calls with name, coSpace and callCorrelator as text/xml', async () => {
    const m = sim.startCall({ name: 'Dev Space', bridges: ['cms-1'] });
    const res = await api.get('/calls');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/xml/);
    const call = res.xml.calls.call.find((c: Record<string, string>) => c['@id'] === m.callId('cms-1'));
    assert.deepEqual(
      { name: call.name, coSpace: call.coSpace, callCorrelator: call.callCorrelator },
      { name: 'Dev Space', coSpace: m.coSpace, callCorrelator: m.callCorrelator },
    );
    sim.endCall(m);
  });

  test('collections are capped per page; offset pages through and total counts everything', async () => {
    const meetings = Array.from({ length: 7 }, (_, i) => sim.startCall({ name: `paged ${i}`, bridges: ['cms-2'] }));
    const first = await api2.get('/calls?limit=100');
    assert.equal(first.xml.calls['@total'], '7');
    assert.equal(first.xml.calls.call.length, 3, 'the server cap wins over a larger limit');
    const seen: string[] = [];
    for (let offset = 0; ; offset += 3) {
      const page = await api2.get(`/calls?offset=${offset}&limit=3`);
      const ids = (page.xml.calls.call ?? []).map((c: Record<string, string>) => c['@id']);
      seen.push(...ids);
      if (offset + ids.length >= Number(page.xml.calls['@total'])) break;
    }
    assert.deepEqual(new Set(seen), new Set(meetings.map((m) => m.callId('cms-2'))));
    const small = await api2.get('/calls?limit=2');
    assert.equal(small.xml.calls.call.length, 2);
    for (const m of meetings) sim.endCall(m);
  });

  test('GET /calls/<id> reports the call in detail, with numbers for local and remote participants', async () => {
    const m = sim.startCall({ name: 'Detail', bridges: [] });
    sim.join({ meeting: m, bridge: 'cms-1' });
    sim.join({ meeting: m, bridge: 'cms-1' });
    sim.join({ meeting: m, bridge: 'cms-2' });
    const res = await api.get(`/calls/${m.callId('cms-1')}`);
    const call = res.xml.call;
    assert.equal(call['@id'], m.callId('cms-1'));
    assert.equal(call.name, 'Detail');
    assert.equal(call.callType, 'coSpace');
    assert.equal(call.callCorrelator, m.callCorrelator);
    assert.equal(call.numParticipantsLocal, '2');
    assert.equal(call.numParticipantsRemote, '1');
    assert.equal(call.numDistributedInstances, '1');
    assert.equal(call.numCallLegs, '3', 'two people and the distribution link');
    assert.equal(call.locked, 'false');
    sim.endCall(m);
  });

  test('PUT /calls/<id> message fields show up in later GETs; an empty text with duration 0 clears them', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const id = m.callId('cms-1');
    const put = await api.put(`/calls/${id}`, { messageText: 'Security Level 2', messagePosition: 'bottom', messageDuration: 'permanent' });
    assert.equal(put.status, 200);
    const shown = (await api.get(`/calls/${id}`)).xml.call;
    assert.deepEqual([shown.messageText, shown.messagePosition, shown.messageDuration], ['Security Level 2', 'bottom', 'permanent']);
    assert.equal(sim.inspectCall(id).messageVisible, true);
    await api.put(`/calls/${id}`, { messageText: '', messageDuration: '0' });
    const cleared = (await api.get(`/calls/${id}`)).xml.call;
    assert.equal(cleared.messageText, '');
    assert.equal(cleared.messageDuration, '0');
    assert.equal(cleared.messagePosition, 'bottom', 'an omitted parameter keeps its value');
    assert.equal(sim.inspectCall(id).messageVisible, false);
    sim.endCall(m);
  });

  test('a timed message counts down in messageTimeRemaining', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const id = m.callId('cms-1');
    await api.put(`/calls/${id}`, { messageText: 'Recording soon', messageDuration: '30' });
    const call = (await api.get(`/calls/${id}`)).xml.call;
    assert.equal(call.messageDuration, '30');
    assert.ok(Number(call.messageTimeRemaining) <= 30 && Number(call.messageTimeRemaining) >= 29);
    sim.endCall(m);
  });

  test('invalid parameter values get 400 with a parameterError naming the parameter', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const res = await api.put(`/calls/${m.callId('cms-1')}`, { messagePosition: 'sideways' });
    assert.equal(res.status, 400);
    assert.equal(res.xml.failureDetails.parameterError['@parameter'], 'messagePosition');
    sim.endCall(m);
  });

  test('unknown ids get 404 with the matching failureDetails reason', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    const cases: [string, string][] = [
      [`/calls/${unknown}`, 'callDoesNotExist'],
      [`/callLegs/${unknown}`, 'callLegDoesNotExist'],
      [`/participants/${unknown}`, 'participantDoesNotExist'],
      [`/calls/${unknown}/callLegs`, 'callDoesNotExist'],
    ];
    for (const [path, reason] of cases) {
      const res = await api.get(path);
      assert.equal(res.status, 404, path);
      assert.ok(reason in res.xml.failureDetails, `${path} → ${res.text}`);
    }
    const put = await api.put(`/calls/${unknown}`, { messageText: 'x' });
    assert.equal(put.status, 404);
    assert.match(put.text, /<failureDetails><callDoesNotExist\/><\/failureDetails>/);
  });

  test('object names in paths are matched case-insensitively', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const leg = sim.join({ meeting: m, bridge: 'cms-1' });
    assert.equal((await api.get(`/callLegs/${leg.callLegId}`)).status, 200);
    assert.equal((await api.get(`/calllegs/${leg.callLegId}`)).status, 200);
    assert.equal((await api.get(`/CALLS/${m.callId('cms-1')}/CallLegs`)).status, 200);
    sim.endCall(m);
  });

  test('GET /callLegs/<id> has configuration and status, including deactivated', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const leg = sim.join({ meeting: m, bridge: 'cms-1', remoteParty: 'alice@example.com' });
    const detail = (await api.get(`/callLegs/${leg.callLegId}`)).xml.callLeg;
    assert.equal(detail.remoteParty, 'alice@example.com');
    assert.equal(detail.call, leg.callId);
    assert.equal(detail.type, 'sip');
    assert.equal(detail.direction, 'incoming');
    assert.equal(detail.configuration.needsActivation, 'false');
    assert.equal(detail.configuration.rxAudioMute, 'false');
    assert.equal(detail.status.state, 'connected');
    assert.equal(detail.status.deactivated, 'false');
    assert.equal(detail.status.groupId, leg.participantId);
    const list = (await api.get(`/calls/${leg.callId}/callLegs`)).xml.callLegs;
    assert.equal(list['@total'], '1');
    assert.equal(list.callLeg[0].remoteParty, 'alice@example.com');
    sim.endCall(m);
  });

  test('PUT /callLegs/<id> mute and layout changes show up in later GETs', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const leg = sim.join({ meeting: m, bridge: 'cms-1' });
    assert.equal((await api.put(`/callLegs/${leg.callLegId}`, { rxAudioMute: 'true', chosenLayout: 'speakerOnly' })).status, 200);
    const detail = (await api.get(`/callLegs/${leg.callLegId}`)).xml.callLeg;
    assert.equal(detail.configuration.rxAudioMute, 'true');
    assert.equal(detail.configuration.chosenLayout, 'speakerOnly');
    assert.equal(detail.status.layout, 'speakerOnly');
    sim.endCall(m);
  });

  test('POST /calls/<id>/callLegs dials out and answers with the new leg in Location', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const res = await api.post(`/calls/${m.callId('cms-1')}/callLegs`, { remoteParty: 'room42@example.com' });
    assert.equal(res.status, 200);
    const location = res.headers.get('location') ?? '';
    assert.match(location, /^\/api\/v1\/callLegs\/[0-9a-f-]{36}$/);
    const leg = (await api.get(location.replace('/api/v1', ''))).xml.callLeg;
    assert.equal(leg.remoteParty, 'room42@example.com');
    assert.equal(leg.direction, 'outgoing');
    const missing = await api.post(`/calls/${m.callId('cms-1')}/callLegs`, {});
    assert.equal(missing.status, 400);
    assert.equal(missing.xml.failureDetails.parameterError['@parameter'], 'remoteParty');
    sim.endCall(m);
  });

  test('POST /calls/<id>/participants adds a participant and answers with its Location', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const res = await api.post(`/calls/${m.callId('cms-1')}/participants`, { remoteParty: 'bob@partner.example.org' });
    assert.equal(res.status, 200);
    const location = res.headers.get('location') ?? '';
    assert.match(location, /^\/api\/v1\/participants\/[0-9a-f-]{36}$/);
    const participant = (await api.get(location.replace('/api/v1', ''))).xml.participant;
    assert.equal(participant.call, m.callId('cms-1'));
    sim.endCall(m);
  });

  test('DELETE /callLegs/<id> disconnects the leg: callLegEnd with apiInitiatedTeardown', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    sim.join({ meeting: m, bridge: 'cms-1' });
    const leg = sim.join({ meeting: m, bridge: 'cms-1' });
    assert.equal((await api.delete(`/callLegs/${leg.callLegId}`)).status, 200);
    assert.equal((await api.get(`/callLegs/${leg.callLegId}`)).status, 404);
    await sim.waitForCdrsDelivered();
    const end = receiver.acceptedRecords().find((r) => r.type === 'callLegEnd' && r.id === leg.callLegId);
    assert.equal(end?.body.reason, 'apiInitiatedTeardown');
    assert.equal(end?.body.remoteTeardown, 'false');
    sim.endCall(m);
  });

  test('DELETE /calls/<id> ends the call: its legs end and callEnd follows', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const leg = sim.join({ meeting: m, bridge: 'cms-1' });
    assert.equal((await api.delete(`/calls/${leg.callId}`)).status, 200);
    assert.equal((await api.get(`/calls/${leg.callId}`)).status, 404);
    await sim.waitForCdrsDelivered();
    const types = receiver
      .acceptedRecords()
      .filter((r) => r.id === leg.callId || r.id === leg.callLegId)
      .map((r) => r.type);
    assert.deepEqual(types.slice(-2), ['callLegEnd', 'callEnd']);
  });

  test('participants of a distributed call list the remote ones with their callBridge', async () => {
    const m = sim.startCall({ bridges: [] });
    const local = sim.join({ meeting: m, bridge: 'cms-1' });
    const remote = sim.join({ meeting: m, bridge: 'cms-2' });
    const list = (await api.get(`/calls/${local.callId}/participants`)).xml.participants;
    assert.equal(list['@total'], '2');
    const byId = Object.fromEntries(list.participant.map((p: Record<string, string>) => [p['@id'], p]));
    assert.equal(byId[local.participantId].callBridge, undefined);
    assert.equal(byId[remote.participantId].callBridge, sim.bridge('cms-2').callBridgeId);
    assert.equal(byId[remote.participantId].call, local.callId, 'named by this bridge’s call id');
    const refused = await api.put(`/participants/${remote.participantId}`, { importance: '5' });
    assert.equal(refused.status, 400);
    assert.ok('participantCannotBeModified' in refused.xml.failureDetails);
    sim.endCall(m);
  });

  test('PUT /calls/<id>/participants/* changes everyone except filterIds, or only them with mode=selected', async () => {
    const m = sim.startCall({ bridges: ['cms-1'] });
    const presenter = sim.join({ meeting: m, bridge: 'cms-1' });
    const others = [sim.join({ meeting: m, bridge: 'cms-1' }), sim.join({ meeting: m, bridge: 'cms-1' })];
    const call = presenter.callId;
    assert.equal((await api.put(`/calls/${call}/participants/*`, { rxAudioMute: 'true', filterIds: presenter.participantId })).status, 200);
    assert.equal(sim.inspectCall(call).legs.find((l) => l.id === presenter.callLegId)?.rxAudioMute, false);
    for (const o of others) assert.equal(sim.inspectCall(call).legs.find((l) => l.id === o.callLegId)?.rxAudioMute, true);
    await api.put(`/calls/${call}/participants/*`, { importance: '10', filterIds: presenter.participantId, mode: 'selected' });
    const importance = new Map(sim.inspectCall(call).participants.map((p) => [p.id, p.importance] as const));
    assert.equal(importance.get(presenter.participantId), 10);
    assert.equal(importance.get(others[0]?.participantId as string), null);
    const tooMany = Array.from({ length: 21 }, (_, i) => `00000000-0000-4000-8000-0000000000${String(i).padStart(2, '0')}`).join(',');
    const refused = await api.put(`/calls/${call}/participants/*`, { rxAudioMute: 'false', filterIds: tooMany });
    assert.equal(refused.status, 400);
    sim.endCall(m);
  });

  test('GET /callBridges lists the cluster with the ids CDR envelopes carry', async () => {
    const list = (await api.get('/callBridges')).xml.callBridges;
    assert.equal(list['@total'], '2');
    assert.deepEqual(
      list.callBridge.map((b: Record<string, string>) => [b['@id'], b.name]),
      sim.bridges.map((b) => [b.callBridgeId, b.name]),
    );
    const one = (await api.get(`/callBridges/${sim.bridge('cms-2').callBridgeId}`)).xml.callBridge;
    assert.equal(one.name, 'cms-2');
    assert.equal(one.address, sim.bridge('cms-2').url);
  });

  test('GET /system/status reports cdrCorrelatorIndex and clusterEnabled', async () => {
    const status = (await api.get('/system/status')).xml.status;
    assert.equal(status.clusterEnabled, 'true');
    assert.equal(status.cdrCorrelatorIndex, String(sim.inspect().bridges[0]?.cdrCorrelatorIndex));
    assert.match(status.softwareVersion, /^\d+\.\d+/);
  });

  test('every API write is in the write log with its parameters, status and time', async () => {
    const m = sim.startCall({ bridges: ['cms-2'] });
    const since = sim.writeLog().at(-1)?.seq ?? 0;
    await api2.put(`/calls/${m.callId('cms-2')}`, { messageText: 'hello', messagePosition: 'top' });
    const [entry] = sim.writeLog({ sinceSeq: since });
    assert.equal(entry?.bridge, 'cms-2');
    assert.equal(entry?.method, 'PUT');
    assert.equal(entry?.url, `/api/v1/calls/${m.callId('cms-2')}`);
    assert.deepEqual(entry?.params, { messageText: 'hello', messagePosition: 'top' });
    assert.equal(entry?.status, 200);
    assert.equal(entry?.outcome, 'applied');
    assert.ok(Date.parse(entry?.at ?? '') > 0);
    sim.endCall(m);
  });
});
