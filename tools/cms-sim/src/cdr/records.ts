import type { Change, LegQuality } from '../model/changes.ts';
import { type CallLeg, isPersonLeg } from '../model/types.ts';

type RecordObjectKind = 'call' | 'callLeg' | 'recording' | 'streaming';

/** An XML element body in fast-xml-parser builder form: "@_x" attributes, nested objects, arrays for repeats. */
export type XmlBody = { [key: string]: string | XmlBody | XmlBody[] };

/** One generated CDR, before a receiver gives it a recordIndex. */
export interface SimRecord {
  type: string;
  /** RFC 3339 UTC */
  time: string;
  session: string;
  /** Present only when the bridge is clustered. */
  callBridge: string | null;
  correlatorIndex: number;
  objectKind: RecordObjectKind;
  objectId: string;
  /** The child element's content after its id attribute, in document order. */
  body: XmlBody;
}

export type RecordContent = Pick<SimRecord, 'type' | 'objectKind' | 'objectId' | 'body'>;

/** What CMS would write for a model change, or null when the change is not a CDR matter. */
export function recordFor(change: Change): RecordContent | null {
  switch (change.kind) {
    case 'callStarted': {
      const { call } = change;
      const m = call.meeting;
      const body: XmlBody = { name: m.name };
      if (m.ownerName) body.ownerName = m.ownerName;
      body.callType = m.callType;
      if (m.coSpace) body.coSpace = m.coSpace;
      if (m.tenant) body.tenant = m.tenant;
      if (m.cdrTag) body.cdrTag = m.cdrTag;
      body.callCorrelator = m.callCorrelator;
      return { type: 'callStart', objectKind: 'call', objectId: call.id, body };
    }
    case 'callEnded': {
      const { call } = change;
      return {
        type: 'callEnd',
        objectKind: 'call',
        objectId: call.id,
        body: {
          callLegsCompleted: String(call.legsCompleted),
          callLegsMaxActive: String(call.maxActiveLegs),
          durationSeconds: String(change.durationSeconds),
          endpointRecorded: 'false',
        },
      };
    }
    case 'legStarted':
      return { type: 'callLegStart', objectKind: 'callLeg', objectId: change.leg.id, body: legStartBody(change.leg) };
    case 'legUpdated': {
      if (!change.cdr) return null;
      const { leg, cdr } = change;
      const body: XmlBody = {};
      if (cdr.state) body.state = cdr.state;
      if (cdr.ivr) body.ivr = '';
      else if (leg.callId) body.call = leg.callId;
      if (cdr.deactivated !== undefined) body.deactivated = String(cdr.deactivated);
      body.groupId = leg.groupId;
      if (leg.sipCallId) body.sipCallId = leg.sipCallId;
      return { type: 'callLegUpdate', objectKind: 'callLeg', objectId: leg.id, body };
    }
    case 'legEnded':
      return {
        type: 'callLegEnd',
        objectKind: 'callLeg',
        objectId: change.leg.id,
        body: legEndBody(change.leg, change.reason, change.quality, change.durationSeconds, change.activatedSeconds),
      };
    case 'recordingStarted':
      return {
        type: 'recordingStart',
        objectKind: 'recording',
        objectId: change.output.id,
        body: {
          path: change.output.target,
          recorderUri: `recorder.sim.local:8443`,
          call: change.call.id,
          callLeg: change.output.legId,
        },
      };
    case 'streamingStarted':
      return {
        type: 'streamingStart',
        objectKind: 'streaming',
        objectId: change.output.id,
        body: {
          streamUrl: change.output.target,
          streamerUrl: `streamer.sim.local:8443`,
          call: change.call.id,
          callLeg: change.output.legId,
        },
      };
    case 'recordingEnded':
      return { type: 'recordingEnd', objectKind: 'recording', objectId: change.output.id, body: {} };
    case 'streamingEnded':
      return { type: 'streamingEnd', objectKind: 'streaming', objectId: change.output.id, body: {} };
    default:
      return null;
  }
}

function legStartBody(leg: CallLeg): XmlBody {
  const body: XmlBody = {};
  if (leg.displayName) body.displayName = leg.displayName;
  body.remoteParty = leg.remoteParty;
  if (leg.remoteAddress) body.remoteAddress = leg.remoteAddress;
  body.localAddress = leg.localAddress;
  body.type = leg.type;
  if (leg.subType) body.subType = leg.subType;
  body.direction = leg.direction;
  if (leg.callId) body.call = leg.callId;
  if (leg.type === 'acano' && isPersonLeg(leg)) body.guestConnection = String(leg.guestConnection);
  body.groupId = leg.groupId;
  if (leg.sipCallId) body.sipCallId = leg.sipCallId;
  body.recording = 'false';
  body.streaming = 'false';
  body.canMove = String(isPersonLeg(leg));
  return body;
}

function legEndBody(leg: CallLeg, reason: string, q: LegQuality, durationSeconds: number, activatedSeconds: number): XmlBody {
  const body: XmlBody = {
    reason,
    remoteTeardown: String(reason === 'remoteTeardown'),
    durationSeconds: String(durationSeconds),
    activatedDuration: String(activatedSeconds),
    mediaUsagePercentages: { ...q.mediaUsagePercentages },
    alarm: q.alarms.map((a) => ({ '@_type': a.type, '@_durationPercentage': a.durationPercentage })),
  };
  body[q.encryptedMedia ? 'encryptedMedia' : 'unencryptedMedia'] = 'true';
  const stats = packetStatistics(q.rxPacketLossPercentage);
  body.rxAudio = { codec: q.rxAudioCodec, packetStatistics: stats };
  body.txAudio = { codec: q.txAudioCodec };
  if (q.rxVideo) {
    body.rxVideo = {
      codec: q.rxVideo.codec,
      maxSizeWidth: String(q.rxVideo.maxSizeWidth),
      maxSizeHeight: String(q.rxVideo.maxSizeHeight),
      packetStatistics: stats,
    };
  }
  if (q.txVideo) {
    body.txVideo = { codec: q.txVideo.codec, maxSizeWidth: String(q.txVideo.maxSizeWidth), maxSizeHeight: String(q.txVideo.maxSizeHeight) };
  }
  if (leg.sipCallId) body.sipCallId = leg.sipCallId;
  return body;
}

function packetStatistics(lossPercentage: string): XmlBody {
  return {
    packetLossBursts: { duration: '0.00', density: lossPercentage },
    packetGap: { duration: '0.00', density: '0.00' },
  };
}
