import type { Cluster } from '../model/cluster.ts';
import type { Call, CallLeg, Participant } from '../model/types.ts';
import { seconds } from '../util/clock.ts';
import type { XmlNode } from './xml.ts';

/** XML bodies of API objects, field names as the CMS API Reference has them. */

export function callSummary(call: Call): XmlNode {
  const m = call.meeting;
  return { '@_id': call.id, name: m.name, coSpace: m.coSpace, callCorrelator: m.callCorrelator, tenant: m.tenant };
}

export function messageTimeRemaining(call: Call, now: number): number | undefined {
  if (call.messageDuration === 'permanent') return undefined;
  return Math.max(0, call.messageDuration - seconds(now - call.messageSetAt));
}

/** Whether participants currently see the call's message. */
export function messageVisible(call: Call, now: number): boolean {
  if (call.messageText === '') return false;
  return call.messageDuration === 'permanent' || (messageTimeRemaining(call, now) ?? 0) > 0;
}

export function callDetail(cluster: Cluster, call: Call): XmlNode {
  const m = call.meeting;
  const now = cluster.clock.now();
  let local = 0;
  let remote = 0;
  for (const p of m.participants.values()) {
    if (p.bridge === call.bridge) local++;
    else remote++;
  }
  return {
    '@_id': call.id,
    name: m.name,
    callType: m.callType,
    coSpace: m.coSpace,
    callCorrelator: m.callCorrelator,
    tenant: m.tenant,
    durationSeconds: seconds(now - call.startedAt),
    numCallLegs: call.legIds.size,
    maxCallLegs: call.maxActiveLegs,
    numParticipantsLocal: local,
    numParticipantsRemote: remote,
    numDistributedInstances: m.instances.size - 1,
    presenterCallLeg: m.presenterLegId && call.legIds.has(m.presenterLegId) ? m.presenterLegId : undefined,
    locked: m.locked,
    recording: call.recording !== null,
    streaming: call.streaming !== null,
    allowAllMuteSelf: call.allowAllMuteSelf,
    allowAllPresentationContribution: false,
    joinAudioMuteOverride: call.joinAudioMuteOverride,
    messageText: call.messageText,
    messagePosition: call.messagePosition,
    messageDuration: call.messageDuration,
    messageTimeRemaining: messageTimeRemaining(call, now),
    ownerName: m.ownerName || undefined,
  };
}

export function legSummary(leg: CallLeg): XmlNode {
  return { '@_id': leg.id, name: leg.displayName, remoteParty: leg.remoteParty, originalRemoteParty: leg.remoteParty, call: leg.callId };
}

export function legDetail(cluster: Cluster, leg: CallLeg): XmlNode {
  const c = leg.configuration;
  const video = leg.kind === 'recorder' || leg.kind === 'streamer' ? undefined : { codec: 'h264', width: 1280, height: 720 };
  return {
    '@_id': leg.id,
    name: leg.displayName,
    remoteParty: leg.remoteParty,
    originalRemoteParty: leg.remoteParty,
    localAddress: leg.localAddress,
    call: leg.callId,
    type: leg.type,
    subType: leg.subType,
    direction: leg.direction,
    canMove: leg.kind === 'sip' || leg.kind === 'app' || leg.kind === 'guest',
    configuration: {
      chosenLayout: c.chosenLayout,
      needsActivation: c.needsActivation,
      rxAudioMute: c.rxAudioMute,
      txAudioMute: c.txAudioMute,
      rxVideoMute: c.rxVideoMute,
      txVideoMute: c.txVideoMute,
      callLegProfile: c.callLegProfile || undefined,
    },
    status: {
      state: leg.state,
      durationSeconds: seconds(cluster.clock.now() - leg.startedAt),
      groupId: leg.groupId,
      sipCallId: leg.sipCallId,
      deactivated: leg.deactivated,
      layout: c.chosenLayout === 'automatic' ? 'allEqual' : c.chosenLayout,
      activeLayout: c.chosenLayout === 'automatic' ? 'allEqual' : c.chosenLayout,
      encryptedMedia: true,
      rxAudio: { codec: leg.type === 'acano' ? 'opus' : 'aac' },
      txAudio: { codec: leg.type === 'acano' ? 'opus' : 'aac' },
      rxVideo: video ? { codec: video.codec, width: video.width, height: video.height } : undefined,
      txVideo: video ? { codec: video.codec, width: video.width, height: video.height } : undefined,
    },
  };
}

/** `bridge` is the bridge answering; participants hosted elsewhere carry `<callBridge>`. */
export function participantSummary(cluster: Cluster, participant: Participant, bridge: string): XmlNode {
  return {
    '@_id': participant.id,
    name: participant.name,
    call: participant.meeting.instances.get(bridge)?.id,
    callBridge: participant.bridge === bridge ? undefined : cluster.bridge(participant.bridge).callBridgeId,
  };
}

/**
 * GET /participants/<id>: `uri` (the address, not remoteParty), top-level `numCallLegs`, `importance` under
 * `configuration`, `status/state`. A participant hosted elsewhere is described by this bridge as well.
 */
export function participantDetail(cluster: Cluster, participant: Participant, bridge: string): XmlNode {
  const host = cluster.bridges.get(participant.bridge);
  const legs = participant.legIds.map((id) => host?.legs.get(id)).filter((l): l is CallLeg => l !== undefined);
  return {
    ...participantSummary(cluster, participant, bridge),
    uri: participant.uri,
    direction: participant.direction,
    numCallLegs: legs.length,
    configuration: {
      importance: participant.importance ?? undefined,
      nameLabelOverride: participant.nameLabelOverride || undefined,
    },
    status: {
      state: legs[0]?.state ?? 'connected',
      deactivated: legs.some((l) => l.deactivated),
    },
  };
}
