import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Simulator, startSimulator } from '@cms/cms-sim';
import { eventually, FAST_CDR, type ParsedRecord, TestReceiver } from './helpers.ts';

/** CDR XML shapes against the samples in docs/cms-interfaces.md §1. */
describe('CDR records', () => {
  let receiver: TestReceiver;
  let sim: Simulator;

  before(async () => {
    receiver = await TestReceiver.start();
    sim = await startSimulator({
      bridges: [{ name: 'cms-1' }, { name: 'cms-2' }],
      seed: 11,
      cdrReceivers: [receiver.url('/cdr/{bridge}?token=s3cret')],
      cdr: FAST_CDR,
      controlPort: null,
    });
  });
  after(async () => {
    await sim.stop();
    await receiver.close();
  });

  async function delivered(): Promise<void> {
    await sim.waitForCdrsDelivered({ timeoutMs: 10_000 });
  }

  function recordsAbout(id: string): ParsedRecord[] {
    return receiver.acceptedRecords().filter((r) => r.id === id || r.body.call === id || r.body.callLeg === id);
  }

  test("a first SIP join reproduces Cisco's documented flow: callLegStart without call, callStart, callLegUpdate with the call", async () => {
    const meeting = sim.startCall({ name: 'test564_1', bridges: [] });
    const joined = sim.join({ meeting, bridge: 'cms-1', remoteParty: 'sipclient1@example.com' });
    await delivered();
    const cms1 = sim.bridge('cms-1');
    const batches = receiver.accepted().filter((b) => b.session === cms1.session);
    assert.ok(batches.length > 0);
    for (const b of batches) assert.equal(b.callBridge, cms1.callBridgeId, 'clustered bridges put callBridge on the envelope');
    const records = batches.flatMap((b) => b.records).filter((r) => r.id === joined.callLegId || r.id === joined.callId);
    assert.deepEqual(
      records.map((r) => r.type),
      ['callLegStart', 'callStart', 'callLegUpdate'],
    );
    const [legStart, callStart, legUpdate] = records as [ParsedRecord, ParsedRecord, ParsedRecord];
    assert.equal(legStart.body.call, undefined, 'the call id is not known yet');
    assert.equal(legStart.body.remoteParty, 'sipclient1@example.com');
    assert.equal(legStart.body.type, 'sip');
    assert.equal(legStart.body.direction, 'incoming');
    assert.match(legStart.body.localAddress, /@/);
    assert.equal(legStart.body.groupId, joined.participantId);
    assert.match(legStart.body.sipCallId, /^[0-9a-f-]{36}$/);
    assert.equal(callStart.id, joined.callId);
    assert.equal(callStart.body.name, 'test564_1');
    assert.equal(callStart.body.callType, 'coSpace');
    assert.equal(callStart.body.coSpace, meeting.coSpace);
    assert.equal(callStart.body.callCorrelator, meeting.callCorrelator);
    assert.equal(legUpdate.body.state, 'connected');
    assert.equal(legUpdate.body.call, joined.callId);
    assert.equal(legUpdate.body.groupId, joined.participantId);
    assert.equal(legUpdate.body.sipCallId, legStart.body.sipCallId);
    for (const r of records) assert.match(r.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'RFC 3339 UTC');
    sim.endCall(meeting);
  });

  test('the receiver URI is used verbatim, query string included', async () => {
    const meeting = sim.startCall({ bridges: ['cms-2'] });
    await delivered();
    const post = receiver.posts.find((p) =>
      p.batch.records.some((r) => r.type === 'callStart' && r.body.callCorrelator === meeting.callCorrelator),
    );
    assert.equal(post?.url, '/cdr/cms-2?token=s3cret');
    sim.endCall(meeting);
  });

  test('a leg that passes through the IVR gets a callLegUpdate with an empty <ivr/> before the one naming its call', async () => {
    const meeting = sim.startCall({ bridges: ['cms-1'] });
    const joined = sim.join({ meeting, bridge: 'cms-1', viaIvr: true });
    await delivered();
    const updates = recordsAbout(joined.callLegId).filter((r) => r.type === 'callLegUpdate');
    assert.equal(updates.length, 2);
    assert.equal(updates[0]?.body.ivr, '', 'empty <ivr/> element');
    assert.equal(updates[0]?.body.call, undefined);
    assert.equal(updates[1]?.body.call, joined.callId);
    sim.endCall(meeting);
  });

  test('callLegEnd carries the reason, durations, media usage, repeated <alarm> elements and codecs', async () => {
    const meeting = sim.startCall({ bridges: ['cms-1'] });
    const joined = sim.join({ meeting, bridge: 'cms-1' });
    sim.join({ meeting, bridge: 'cms-1' });
    sim.leave(joined.callLegId, 'remoteTeardown', {
      quality: {
        alarms: [
          { type: 'packetLoss', durationPercentage: '0.1' },
          { type: 'excessiveJitter', durationPercentage: '0.0' },
        ],
      },
    });
    await delivered();
    const end = recordsAbout(joined.callLegId).find((r) => r.type === 'callLegEnd');
    assert.ok(end);
    assert.equal(end.body.reason, 'remoteTeardown');
    assert.equal(end.body.remoteTeardown, 'true');
    assert.match(end.body.durationSeconds, /^\d+$/);
    assert.match(end.body.activatedDuration, /^\d+$/);
    assert.match(end.body.mediaUsagePercentages.mainVideoViewer, /^\d+\.\d$/);
    assert.deepEqual(
      end.body.alarm.map((a: Record<string, string>) => [a['@type'], a['@durationPercentage']]),
      [
        ['packetLoss', '0.1'],
        ['excessiveJitter', '0.0'],
      ],
    );
    assert.equal(end.body.encryptedMedia ?? end.body.unencryptedMedia, 'true');
    assert.ok(end.body.rxAudio.codec);
    assert.ok(end.body.txAudio.codec);
    assert.ok(end.body.rxAudio.packetStatistics, 'rx streams carry packet statistics');
    sim.endCall(meeting);
  });

  test('web app guests are acano legs with subType webApp, guestConnection true and groupId equal to the leg id', async () => {
    const meeting = sim.startCall({ bridges: ['cms-1'] });
    sim.join({ meeting, bridge: 'cms-1' });
    const guest = sim.join({ meeting, bridge: 'cms-1', kind: 'guest', displayName: 'Visitor' });
    await delivered();
    const start = recordsAbout(guest.callLegId).find((r) => r.type === 'callLegStart');
    assert.equal(start?.body.type, 'acano');
    assert.equal(start?.body.subType, 'webApp');
    assert.equal(start?.body.guestConnection, 'true');
    assert.equal(start?.body.groupId, guest.callLegId);
    assert.equal(start?.body.displayName, 'Visitor');
    sim.endCall(meeting);
  });

  test('an outgoing leg names its call already in callLegStart', async () => {
    const meeting = sim.startCall({ bridges: ['cms-1'] });
    const out = sim.join({ meeting, bridge: 'cms-1', direction: 'outgoing', remoteParty: '0701234567@pstn.example.com' });
    await delivered();
    const start = recordsAbout(out.callLegId).find((r) => r.type === 'callLegStart');
    assert.equal(start?.body.direction, 'outgoing');
    assert.equal(start?.body.call, out.callId);
    assert.equal(start?.body.remoteParty, '0701234567@pstn.example.com', 'leading zeros kept');
    sim.endCall(meeting);
  });

  test('recording and streaming records name the call and the recorder/streamer leg', async () => {
    const meeting = sim.startCall({ bridges: ['cms-1'] });
    const joined = sim.join({ meeting, bridge: 'cms-1' });
    sim.record(joined.callId, true);
    sim.stream(joined.callId, true);
    sim.record(joined.callId, false);
    sim.endCall(meeting);
    await delivered();
    const about = receiver
      .acceptedRecords()
      .filter((r) => ['recordingStart', 'recordingEnd', 'streamingStart', 'streamingEnd'].includes(r.type));
    const recStart = about.find((r) => r.type === 'recordingStart' && r.body.call === joined.callId);
    assert.ok(recStart?.body.path);
    assert.ok(recStart?.body.recorderUri);
    assert.ok(recStart?.body.callLeg);
    const recEnd = about.find((r) => r.type === 'recordingEnd' && r.id === recStart?.id);
    assert.ok(recEnd, 'recordingEnd carries the same id');
    const streamStart = about.find((r) => r.type === 'streamingStart' && r.body.call === joined.callId);
    assert.ok(streamStart?.body.streamUrl);
    assert.ok(
      about.some((r) => r.type === 'streamingEnd' && r.id === streamStart?.id),
      'ending the call ends the stream',
    );
  });

  test('a meeting on two bridges is one call per bridge with the same callCorrelator, joined by distributionLink legs', async () => {
    const meeting = sim.startCall({ bridges: [] });
    const a = sim.join({ meeting, bridge: 'cms-1' });
    const b = sim.join({ meeting, bridge: 'cms-2' });
    await delivered();
    assert.notEqual(a.callId, b.callId);
    const starts = receiver.acceptedRecords().filter((r) => r.type === 'callStart' && r.body.callCorrelator === meeting.callCorrelator);
    assert.deepEqual(new Set(starts.map((r) => r.id)), new Set([a.callId, b.callId]));
    const links = receiver.acceptedRecords().filter((r) => r.type === 'callLegStart' && r.body.subType === 'distributionLink');
    const linkCalls = links.filter((r) => r.body.call === a.callId || r.body.call === b.callId);
    assert.equal(linkCalls.length, 2, 'one link leg on each bridge');
    assert.deepEqual(linkCalls.map((r) => r.body.direction).sort(), ['incoming', 'outgoing']);
    // Each bridge reports only the legs it hosts.
    const cms2Session = sim.bridge('cms-2').session;
    const aOnCms2 = receiver
      .accepted()
      .filter((x) => x.session === cms2Session)
      .flatMap((x) => x.records)
      .filter((r) => r.id === a.callLegId);
    assert.equal(aOnCms2.length, 0);
    sim.endCall(meeting);
    await delivered();
    const ends = receiver.acceptedRecords().filter((r) => r.type === 'callEnd' && (r.id === a.callId || r.id === b.callId));
    assert.equal(ends.length, 2);
  });

  test('unknown future record types are not produced, only the nine documented ones', async () => {
    await eventually(() => receiver.acceptedRecords().length > 0, { what: 'records' });
    const known = new Set([
      'callStart',
      'callEnd',
      'callLegStart',
      'callLegUpdate',
      'callLegEnd',
      'recordingStart',
      'recordingEnd',
      'streamingStart',
      'streamingEnd',
    ]);
    for (const r of receiver.acceptedRecords()) assert.ok(known.has(r.type), r.type);
  });
});

describe('CDR envelope of a single bridge', () => {
  test('a bridge that is not clustered leaves callBridge off the envelope', async () => {
    const receiver = await TestReceiver.start();
    const sim = await startSimulator({ seed: 3, cdrReceivers: [receiver.url()], cdr: FAST_CDR, controlPort: null });
    try {
      sim.startCall();
      await sim.waitForCdrsDelivered({ timeoutMs: 10_000 });
      const [batch] = receiver.accepted();
      assert.equal(batch?.session, sim.bridges[0]?.session);
      assert.equal(batch?.callBridge, null);
      assert.doesNotMatch(receiver.posts[0]?.body ?? '', /callBridge=/);
      assert.match(receiver.posts[0]?.body ?? '', /^<\?xml version="1.0"\?>/);
    } finally {
      await sim.stop();
      await receiver.close();
    }
  });
});
