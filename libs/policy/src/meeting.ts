import { classifyLeg } from './classify.ts';
import type { CompiledPolicy } from './compile.ts';
import { countsAsParticipant, type ParticipationReason } from './participants.ts';
import type { Classification, LegFacts, Level } from './types.ts';

export interface MeetingLevel {
  /** The worst level of the counted participants; null when none counts (the message must then be cleared). */
  level: Level | null;
  /** Counted participants, in input order. */
  participants: Array<{ legId: string; classification: Classification }>;
  /** Legs that do not count, and why. */
  ignored: Array<{ legId: string; why: ParticipationReason }>;
  /** The first participant (in input order) at the meeting's level. */
  decisiveLegId: string | null;
}

/**
 * A meeting is every call instance sharing a callCorrelator, on any bridge; a call without one is its own
 * meeting. The key is what legs of all instances are grouped by.
 */
export function meetingKey(call: { id: string; callCorrelator?: string | null }): string {
  return call.callCorrelator || call.id;
}

/** Classifies the legs of all instances of one meeting; the worst counted participant sets the level. */
export function meetingLevel(legs: Iterable<LegFacts>, policy: CompiledPolicy): MeetingLevel {
  const result: MeetingLevel = { level: null, participants: [], ignored: [], decisiveLegId: null };
  for (const leg of legs) {
    const { counts, why } = countsAsParticipant(leg, policy);
    if (!counts) {
      result.ignored.push({ legId: leg.id, why });
      continue;
    }
    const classification = classifyLeg(leg, policy);
    result.participants.push({ legId: leg.id, classification });
    if (result.level === null || classification.level > result.level) {
      result.level = classification.level;
      result.decisiveLegId = leg.id;
    }
  }
  return result;
}
