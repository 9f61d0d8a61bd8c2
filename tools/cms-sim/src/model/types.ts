/** The simulated CMS object model: meetings (one per callCorrelator), calls (one per bridge), legs, participants. */

/** How a leg reached the call. `app` = signed-in web app user, `guest` = WebRTC guest. */
export type LegKind = 'sip' | 'app' | 'guest' | 'distributionLink' | 'recorder' | 'streamer';
export type Direction = 'incoming' | 'outgoing';
type LegState = 'initial' | 'ringing' | 'connected' | 'onHold';
export type CallType = 'coSpace' | 'adHoc' | 'lyncConferencing' | 'forwarding';

export const LAYOUTS = [
  'allEqual',
  'speakerOnly',
  'telepresence',
  'stacked',
  'allEqualQuarters',
  'allEqualNinths',
  'allEqualSixteenths',
  'allEqualTwentyFifths',
  'onePlusFive',
  'onePlusSeven',
  'onePlusNine',
  'automatic',
  'onePlusN',
] as const;

/** callLegEnd reasons seen from CMS (docs/cms-interfaces.md §1.3); leave() accepts any string. */
export const CALL_LEG_END_REASONS = [
  'remoteTeardown',
  'localTeardown',
  'apiInitiatedTeardown',
  'clientInitiatedTeardown',
  'callDeactivated',
  'callEnded',
  'callMoved',
  'timeout',
  'ringingTimeout',
  'remoteBusy',
  'remoteRejected',
  'unknownDestination',
  'dnsFailure',
  'encryptionRequired',
  'incorrectPasscode',
  'ivrTimeout',
  'ivrUnknownCall',
  'participantLimitReached',
  'tenantParticipantLimitReached',
  'confirmationTimeout',
  'error',
] as const;

export interface LegConfiguration {
  chosenLayout: string;
  needsActivation: boolean;
  rxAudioMute: boolean;
  txAudioMute: boolean;
  rxVideoMute: boolean;
  txVideoMute: boolean;
  callLegProfile: string;
}

export interface CallLeg {
  id: string;
  bridge: string;
  kind: LegKind;
  type: 'sip' | 'acano';
  subType: string | null;
  direction: Direction;
  displayName: string;
  remoteParty: string;
  remoteAddress: string;
  localAddress: string;
  sipCallId: string | null;
  /** The participant id (CDR groupId); equals the leg id for app and guest legs. */
  groupId: string;
  meeting: Meeting;
  /** null until the leg is in its call (e.g. still in the IVR). */
  callId: string | null;
  inIvr: boolean;
  state: LegState;
  configuration: LegConfiguration;
  /** Waiting in the lobby. */
  deactivated: boolean;
  /** Admitted by PUT deactivated=false: stays activated whatever the lobby rules say. */
  admitted: boolean;
  /** Sent back to the lobby by PUT deactivated=true. */
  heldInLobby: boolean;
  guestConnection: boolean;
  /** Simulated ms. */
  startedAt: number;
  activatedMs: number;
  activatedSince: number | null;
  ended: boolean;
  /** Simulated ms this leg shared content (presentation) before `presentingSince`. */
  presentedMs: number;
  presentingSince: number | null;
  /** The other side of a distribution link. */
  peerLegId: string | null;
}

export interface Participant {
  id: string;
  meeting: Meeting;
  /** The bridge hosting the participant's legs. */
  bridge: string;
  name: string;
  uri: string;
  direction: Direction;
  kind: LegKind;
  legIds: string[];
  importance: number | null;
  nameLabelOverride: string;
  dtmfSequences: string[];
}

export interface MediaOutput {
  id: string;
  legId: string;
  /** recording path or stream URL */
  target: string;
}

export interface Call {
  id: string;
  bridge: string;
  meeting: Meeting;
  startedAt: number;
  legIds: Set<string>;
  legsCompleted: number;
  maxActiveLegs: number;
  messageText: string;
  messagePosition: string;
  /** seconds, or "permanent" */
  messageDuration: number | 'permanent';
  /** Simulated ms when the message was last set (for messageTimeRemaining). */
  messageSetAt: number;
  recording: MediaOutput | null;
  streaming: MediaOutput | null;
  allowAllMuteSelf: boolean;
  joinAudioMuteOverride: boolean;
}

interface DistributionLink {
  /** [hub bridge, other bridge] */
  bridges: [string, string];
  /** [leg on the hub, leg on the other bridge] */
  legIds: [string, string];
}

export interface Meeting {
  callCorrelator: string;
  name: string;
  callType: CallType;
  coSpace: string | null;
  tenant: string | null;
  ownerName: string;
  cdrTag: string | null;
  /** bridge name → call instance */
  instances: Map<string, Call>;
  participants: Map<string, Participant>;
  locked: boolean;
  /** distributionLink leg pairs between this meeting's instances */
  links: DistributionLink[];
  /** Ended meetings accept no joins. */
  ended: boolean;
  /** The leg sharing content (one per meeting, on whichever bridge hosts it); GET /calls presenterCallLeg. */
  presenterLegId: string | null;
  /** The leg heard as the active speaker; the roster's activeSpeaker. */
  activeSpeakerLegId: string | null;
}

export function isPersonLeg(leg: CallLeg): boolean {
  return leg.kind === 'sip' || leg.kind === 'app' || leg.kind === 'guest';
}
