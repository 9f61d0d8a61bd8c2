import type { CmsObject } from './xml.ts';

/** One page of a collection: `total` is what CMS has, `items` what this page carried (capped by the server). */
export interface CmsPage<T> {
  total: number;
  offset: number;
  items: T[];
}

/** offset/limit paging plus the collection's filters (coSpaceFilter, tenantFilter, filter, participantFilter, ...). */
export interface CmsListQuery {
  offset?: number;
  limit?: number;
  [filter: string]: string | number | boolean | undefined;
}

export type MessagePosition = 'top' | 'middle' | 'bottom';

/** `<call id>` in GET /api/v1/calls. */
export interface CmsCallSummary extends CmsObject {
  id: string;
  name?: string;
  coSpace?: string;
  callCorrelator?: string;
  tenant?: string;
}

/** GET /api/v1/calls/<id>; values as CMS sent them (text). */
export interface CmsCall extends CmsObject {
  id: string;
  name?: string;
  callType?: string;
  coSpace?: string;
  callCorrelator?: string;
  numCallLegs?: string;
  locked?: string;
  messageText?: string;
  messagePosition?: string;
  /** Seconds, or "permanent". */
  messageDuration?: string;
  messageTimeRemaining?: string;
}

/** `<callLeg id>` in GET /api/v1/calls/<id>/callLegs. */
export interface CmsCallLegSummary extends CmsObject {
  id: string;
  name?: string;
  remoteParty?: string;
  originalRemoteParty?: string;
  call?: string;
}

/** GET /api/v1/callLegs/<id>: top-level fields plus `configuration` and `status` objects. */
export interface CmsCallLeg extends CmsObject {
  id: string;
  name?: string;
  remoteParty?: string;
  call?: string;
  type?: string;
  subType?: string;
  configuration?: CmsObject;
  status?: CmsObject;
}

/** PUT /api/v1/calls/<id>. An omitted field keeps its value; an empty string clears it. */
export interface CallUpdate {
  messageText?: string;
  messagePosition?: MessagePosition | '';
  /** Seconds, or "permanent"; 0 clears. */
  messageDuration?: number | 'permanent' | (string & {});
  locked?: boolean;
  recording?: boolean;
  streaming?: boolean;
  allowAllMuteSelf?: boolean;
  joinAudioMuteOverride?: boolean;
}

/** PUT /api/v1/callLegs/<id>. */
export interface CallLegUpdate {
  rxAudioMute?: boolean;
  txAudioMute?: boolean;
  rxVideoMute?: boolean;
  txVideoMute?: boolean;
  chosenLayout?: string;
  needsActivation?: boolean;
  callLegProfile?: string;
  dtmfSequence?: string;
}

/** PUT /api/v1/participants/<id>. `deactivated: false` admits a participant waiting in the lobby (CMS 2.9+). */
export interface ParticipantUpdate {
  importance?: number | '';
  nameLabelOverride?: string;
  dtmfSequence?: string;
  deactivated?: boolean;
}

/** POST /api/v1/calls/<id>/participants besides remoteParty. */
export interface AddParticipantOptions {
  /** false bypasses the lobby (CMS 2.9+). */
  deactivated?: boolean;
  movedParticipant?: string;
  /** A layout name (Cisco's list, LAYOUTS). */
  chosenLayout?: string;
  nameLabelOverride?: string;
  importance?: number;
  needsActivation?: boolean;
}

/** Layout names CMS accepts for chosenLayout (API reference, call legs). */
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
export type Layout = (typeof LAYOUTS)[number];

/** PUT /api/v1/calls/<id>/participants/*: the mute/layout/importance change, and whom it leaves out (or only covers). */
export interface ParticipantsBulkUpdate {
  rxAudioMute?: boolean;
  txAudioMute?: boolean;
  rxVideoMute?: boolean;
  txVideoMute?: boolean;
  chosenLayout?: string;
  importance?: number | '';
  /** Participant ids (at most 20). */
  filterIds?: string[];
  /** exclude (default): everyone but filterIds; selected: only filterIds. */
  mode?: 'exclude' | 'selected';
}

export type FormFields = Record<string, string | number | boolean | undefined>;
