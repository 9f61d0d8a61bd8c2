import type { Cluster } from '../model/cluster.ts';
import type { Call, Participant } from '../model/types.ts';

/** Elements a `calls` subscription may ask for; callInfo also knows joinAudioMuteOverride. */
export const CALL_ELEMENTS = [
  'name',
  'participants',
  'distributedInstances',
  'recording',
  'endpointRecording',
  'streaming',
  'lockState',
  'callType',
  'callCorrelator',
] as const;

export const CALL_INFO_ELEMENTS = [...CALL_ELEMENTS, 'joinAudioMuteOverride'] as const;

export const ROSTER_ELEMENTS = [
  'name',
  'uri',
  'state',
  'direction',
  'audioMuted',
  'videoMuted',
  'importance',
  'layout',
  'activeSpeaker',
  'presenter',
  'endpointRecording',
  'canMove',
  'canMoveToLobby',
  'movedParticipant',
  'movedParticipantCallBridge',
] as const;

type Json = string | number | boolean;

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
    activeSpeaker: false,
    presenter: false,
    endpointRecording: false,
    canMove: true,
    canMoveToLobby: config?.needsActivation ?? false,
    movedParticipant: '',
    movedParticipantCallBridge: '',
    // Not in Cisco's list; returned only to clients that ask for it by name.
    deactivated: leg?.deactivated ?? false,
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
