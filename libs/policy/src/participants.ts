import type { LegFacts, PolicyConfig } from './types.ts';

/** Why a leg does or does not count as a participant of its meeting. */
export type ParticipationReason =
  | 'connected'
  | 'inLobbyCounted'
  | 'ended'
  | 'distributionLink'
  | 'recorderOrStreamer'
  | 'inIvr'
  | 'notConnected'
  | 'inLobby';

// CMS puts links between clustered bridges (and to Lync/Skype conferences) in subType; they carry other
// bridges' participants, who are counted through their own legs there.
const BRIDGE_LINKS = new Set(['distributionlink', 'lyncdistribution']);
// The API and events report `onHold` for a connected leg that is on hold: still a participant.
const CONNECTED_STATES = new Set(['connected', 'onhold']);

/**
 * A leg counts from the moment it is connected until it ends: not bridge links, not recorder/streamer legs,
 * not while ringing or in an IVR, and not while waiting in the lobby unless `countLobby` is set.
 * A row with no state but a connectedAt is connected (the state column may not have caught up yet).
 */
export function countsAsParticipant(
  leg: LegFacts,
  policy: Pick<PolicyConfig, 'countLobby'>,
): { counts: boolean; why: ParticipationReason } {
  if (leg.endedAt) return { counts: false, why: 'ended' };
  if (BRIDGE_LINKS.has((leg.subType ?? '').toLowerCase())) return { counts: false, why: 'distributionLink' };
  if (leg.isRecorderOrStreamer === true) return { counts: false, why: 'recorderOrStreamer' };
  if (leg.inIvr === true) return { counts: false, why: 'inIvr' };
  const connected = leg.state ? CONNECTED_STATES.has(leg.state.toLowerCase()) : Boolean(leg.connectedAt);
  if (!connected) return { counts: false, why: 'notConnected' };
  if (leg.deactivated === true) return policy.countLobby ? { counts: true, why: 'inLobbyCounted' } : { counts: false, why: 'inLobby' };
  return { counts: true, why: 'connected' };
}

/**
 * Ids of recorder and streamer legs: the `callLeg` of recordingStart / streamingStart records (CdrRecord and
 * cdr_records rows both carry it as callLegId). Set LegFacts.isRecorderOrStreamer for legs in this set.
 */
export function recorderOrStreamerLegIds(records: Iterable<{ type: string; callLegId: string | null }>): Set<string> {
  const ids = new Set<string>();
  for (const record of records) {
    if ((record.type === 'recordingStart' || record.type === 'streamingStart') && record.callLegId) ids.add(record.callLegId);
  }
  return ids;
}
