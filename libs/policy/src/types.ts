import type { Config } from '@cms/config';

/** The `policy` block of the configuration, defaults applied. */
export type PolicyConfig = Config['policy'];

/** 1 = secure, 2 = internal, 3 = external; higher is worse. */
export type Level = 1 | 2 | 3;

/**
 * What the policy needs to know about one call leg. Field names are the `call_legs` columns as drizzle returns
 * them, so a row can be passed straight in; everything but `id` is optional so facts from the API or the events
 * feed fit too.
 */
export interface LegFacts {
  id: string;
  /** The call instance (on one bridge) the leg belongs to. */
  callId?: string | null;
  /** `sip` or `acano` (app legs). */
  type?: string | null;
  /** `distributionLink`, `lyncDistribution`, `webApp`, `lync`, `avaya`, ... */
  subType?: string | null;
  /** `true` for WebRTC / web app guests. */
  guestConnection?: boolean | null;
  remoteParty?: string | null;
  remoteAddress?: string | null;
  /** `connected` from callLegUpdate; the API and events also say `initial`, `ringing`, `onHold`. */
  state?: string | null;
  connectedAt?: string | null;
  /** `true` while the leg is in an IVR. */
  inIvr?: boolean | null;
  /** `true` while the leg waits in the lobby. */
  deactivated?: boolean | null;
  /** Set whenever callLegEnd arrives, whatever came before. */
  endedAt?: string | null;
  /**
   * The leg is a recorder or streamer connection (the `callLeg` of a recordingStart / streamingStart record;
   * see recorderOrStreamerLegIds). CMS gives such legs no type or subType of their own, so the caller says.
   */
  isRecorderOrStreamer?: boolean | null;
}

/** Why a leg got its level: the rule that fired and, for list matches, the entry that matched. */
export type Classification =
  | { level: 3; rule: 'guest' | 'app' }
  | { level: 1; rule: 'secureDomain'; matched: string; host: string; address: string }
  | { level: 2; rule: 'internalDomain'; matched: string; host: string; address: string }
  | { level: 3; rule: 'unlistedDomain' | 'ipNotListed'; host: string; address: string }
  | { level: 3; rule: 'phoneNumber' | 'invalidAddress'; address: string }
  | { level: 3; rule: 'noAddress' };

export type ClassificationRule = Classification['rule'];
