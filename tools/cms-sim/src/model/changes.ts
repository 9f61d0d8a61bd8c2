import type { Call, CallLeg, MediaOutput, Meeting, Participant } from './types.ts';

/**
 * Elements of a `callRoster` subscription (Events Guide) a participant change touches: Cisco's list, which has no
 * lobby element (the lobby state shows in CDRs and the API only). The events feed sends only these.
 */
export type RosterElement =
  | 'name'
  | 'uri'
  | 'state'
  | 'direction'
  | 'audioMuted'
  | 'videoMuted'
  | 'importance'
  | 'layout'
  | 'activeSpeaker'
  | 'presenter'
  | 'endpointRecording'
  | 'canMove'
  | 'canMoveToLobby'
  | 'movedParticipant'
  | 'movedParticipantCallBridge';

/** Fields of a `callLegUpdate` record that a change carries (the record also repeats the leg's identity). */
export interface LegCdrUpdate {
  state?: 'connected';
  /** Put the call id on the record (`<call>`). */
  call?: boolean;
  /** Put an empty `<ivr/>` on the record. */
  ivr?: boolean;
  deactivated?: boolean;
}

/** Elements of a call that the events `calls`/`callInfo` subscriptions report. */
export type CallElement =
  | 'name'
  | 'participants'
  | 'distributedInstances'
  | 'recording'
  | 'endpointRecording'
  | 'streaming'
  | 'lockState'
  | 'callType'
  | 'callCorrelator'
  | 'joinAudioMuteOverride';

export interface LegQuality {
  encryptedMedia: boolean;
  mediaUsagePercentages: Record<string, string>;
  alarms: { type: 'packetLoss' | 'excessiveJitter' | 'highRoundTripTime'; durationPercentage: string }[];
  rxAudioCodec: string;
  txAudioCodec: string;
  rxVideo: { codec: string; maxSizeWidth: number; maxSizeHeight: number } | null;
  txVideo: { codec: string; maxSizeWidth: number; maxSizeHeight: number } | null;
  rxPacketLossPercentage: string;
}

/**
 * One model change. The model emits these synchronously; CDRs, events and inspection all derive from them,
 * so an API write, a driver call and a scenario step all show up everywhere CMS would show them.
 */
export type Change =
  | { kind: 'callStarted'; bridge: string; call: Call }
  | { kind: 'callUpdated'; bridge: string; call: Call; elements: CallElement[] }
  | { kind: 'callEnded'; bridge: string; call: Call; durationSeconds: number }
  | { kind: 'legStarted'; bridge: string; leg: CallLeg }
  /** `cdr` null: a change CMS writes no record for (mutes, layout, needsActivation set through the API). */
  | { kind: 'legUpdated'; bridge: string; leg: CallLeg; cdr: LegCdrUpdate | null }
  | {
      kind: 'legEnded';
      bridge: string;
      leg: CallLeg;
      reason: string;
      quality: LegQuality;
      durationSeconds: number;
      activatedSeconds: number;
    }
  | { kind: 'recordingStarted' | 'streamingStarted'; bridge: string; call: Call; output: MediaOutput }
  | { kind: 'recordingEnded' | 'streamingEnded'; bridge: string; call: Call; output: MediaOutput }
  | { kind: 'participantAdded' | 'participantRemoved'; meeting: Meeting; participant: Participant }
  /** `elements`: the roster elements that changed (never empty). */
  | { kind: 'participantUpdated'; meeting: Meeting; participant: Participant; elements: RosterElement[] }
  | { kind: 'bridgeRestarted'; bridge: string; session: string };

export type ChangeListener = (change: Change) => void;

export class ChangeBus {
  readonly #listeners = new Set<ChangeListener>();

  on(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(change: Change): void {
    for (const listener of this.#listeners) listener(change);
  }
}
