import type { Cluster } from '../model/cluster.ts';
import type { Call, Participant } from '../model/types.ts';

type Json = string | number | boolean;

/** The asked-for elements of a `calls` or `callInfo` subscription; `all` holds every element Cisco lists for them. */
export function callElementValues(call: Call, elements: readonly string[]): Record<string, Json> {
  const m = call.meeting;
  const all: Record<string, Json> = {
    name: m.name,
    participants: m.participants.size,
    distributedInstances: m.instances.size - 1,
    recording: call.recording !== null,
    endpointRecording: false,
    streaming: call.streaming !== null,
    lockState: m.locked ? 'locked' : 'unlocked',
    callType: m.callType,
    callCorrelator: m.callCorrelator,
    joinAudioMuteOverride: call.joinAudioMuteOverride,
  };
  return pick(all, elements);
}

/**
 * The asked-for elements of a `callRoster` subscription; `all` holds every element Cisco lists and no other, so an
 * element outside the list (`deactivated`, say) is not sent: Cisco is silent on what CMS does with one.
 */
export function rosterElementValues(cluster: Cluster, participant: Participant, elements: readonly string[]): Record<string, Json> {
  const host = cluster.bridges.get(participant.bridge);
  const leg = participant.legIds.map((id) => host?.legs.get(id)).find((l) => l !== undefined);
  const config = leg?.configuration;
  const all: Record<string, Json> = {
    name: participant.nameLabelOverride || participant.name,
    uri: participant.uri,
    state: leg?.state ?? 'connected',
    direction: participant.direction,
    audioMuted: config?.rxAudioMute ?? false,
    videoMuted: config?.rxVideoMute ?? false,
    importance: participant.importance ?? 0,
    layout: config?.chosenLayout ?? 'automatic',
    activeSpeaker: participant.legIds.includes(participant.meeting.activeSpeakerLegId ?? ''),
    presenter: participant.legIds.includes(participant.meeting.presenterLegId ?? ''),
    endpointRecording: false,
    canMove: true,
    canMoveToLobby: config?.needsActivation ?? false,
    movedParticipant: '',
    movedParticipantCallBridge: '',
  };
  return pick(all, elements);
}

function pick(all: Record<string, Json>, elements: readonly string[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const e of elements) {
    const v = all[e];
    if (v !== undefined) out[e] = v;
  }
  return out;
}
