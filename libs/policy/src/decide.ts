import { classifyLeg } from './classify.ts';
import type { CompiledPolicy } from './compile.ts';
import { meetingKey, meetingLevel } from './meeting.ts';
import { desiredMessage } from './message.ts';
import { countsAsParticipant } from './participants.ts';
import type { Classification, LegFacts, Level } from './types.ts';

/**
 * The decision of the security policy for a set of meetings, as a function of what is stored about them: no
 * Postgres, no clock, no I/O. decideMeetings decides from every leg of the meetings; decideFromParticipants makes the
 * same decision from each call instance's worst counted participant and the changed legs, which is what the policy
 * worker loads under the meetings' locks (its cost does not grow with the meeting), before persisting the decision in
 * the same transaction (services/policy-worker/src/security/).
 */

/** A call instance (one bridge's call of a meeting), as the `calls` table holds it. */
export interface CallInstance {
  id: string;
  node: string | null;
  callCorrelator: string | null;
  endedAt: string | null;
}

/** A `meetings` row: the level last decided and the participant that set it. */
export interface StoredMeeting {
  meetingKey: string;
  level: number | null;
  decisiveLegId: string | null;
}

/** The desired message of a call instance as `call_messages` holds it. */
export interface StoredMessage {
  callId: string;
  messageText: string;
  messagePosition: string | null;
  messageDuration: string;
}

/** Everything stored about the meetings to decide, read under their locks. */
export interface MeetingState {
  /** Every call instance of these meetings, on any bridge (ended ones too). */
  instances: readonly CallInstance[];
  /** The legs of those instances, each naming its call. Their order decides which participant is decisive. */
  legs: readonly (LegFacts & { callId: string })[];
  /** Legs named by a recordingStart or streamingStart record of those instances. */
  recorderLegIds: ReadonlySet<string>;
  /** The meetings rows of these meetings, where there are some. */
  meetings: readonly StoredMeeting[];
  /** The call_messages rows of those instances, where there are some. */
  messages: readonly StoredMessage[];
}

export interface DecideInput {
  /** The meetings to decide (meetingKey of the calls whose facts changed). */
  keys: readonly string[];
  state: MeetingState;
  /** Legs whose policy facts changed in this transaction: the cause of a level change is looked for among them. */
  changedLegIds: readonly string[];
  policy: CompiledPolicy;
  /** CMS nodes we hold API credentials for: only their calls get writes. */
  managedNodes: ReadonlySet<string>;
}

/** One entry of a meeting's level history. */
export interface LevelChange {
  meetingKey: string;
  oldLevel: number | null;
  newLevel: number | null;
  causeLegId: string | null;
  reason: Classification | null;
}

/**
 * What the worker does with a call instance's desired message: `pending` when the actuator writes it (a node we
 * manage), `unplaced` when no node is known for the call yet, `unmanaged` for a node we hold no credentials for.
 */
export type DesiredMessageStatus = 'pending' | 'unplaced' | 'unmanaged';

/** A call_messages row to upsert: the new desired message of one live call instance. */
export interface DesiredMessageRow {
  callId: string;
  node: string | null;
  meetingKey: string;
  level: Level | null;
  messageText: string;
  messagePosition: string | null;
  messageDuration: string;
  status: DesiredMessageStatus;
}

/** A call instance whose desired message changed and must be written to CMS (after the transaction commits). */
export interface MessageWrite {
  callId: string;
  node: string;
  meetingKey: string;
  messageText: string;
}

export interface MeetingsDecision {
  /** The level of each meeting of `keys` (null: nobody counts) and the participant that set it, changed or not. */
  levels: StoredMeeting[];
  /** meetings rows to upsert: those whose level or decisive participant changed, or that had no row. */
  meetings: StoredMeeting[];
  /** Level history entries: one per meeting whose level changed. */
  levelChanges: LevelChange[];
  /** call_messages rows to upsert: live instances whose desired message changed. */
  messages: DesiredMessageRow[];
  /** CMS writes to request once the transaction has committed. */
  writes: MessageWrite[];
}

/**
 * Decides each meeting of `keys` from its stored state:
 * - its level is the worst of its counted participants over all its instances (meetingLevel), null if none counts;
 * - its meetings row is written when it has none, or when the level or the decisive participant changed;
 * - a level different from the stored one (none stored counts as null) adds a history entry, caused by the
 *   decisive participant if its facts changed now, else by the first changed participant of the meeting, else
 *   by the decisive one; its reason is the decisive participant's classification (null when nobody counts);
 * - each live (not ended) instance gets the level's message unless it already has exactly that message; an
 *   instance that never had a message is not given a clear one;
 * - a changed message is written to CMS only for an instance on a node we manage.
 * The legs of a meeting are taken instance by instance in the order of `state.instances`, each instance's in the
 * order of `state.legs`: the first participant at the worst level in that order is the decisive one.
 */
export function decideMeetings(input: DecideInput): MeetingsDecision {
  const { state } = input;
  const changedLegs = new Set(input.changedLegIds);
  const legsByCall = groupBy(
    state.legs.map((leg) => ({ ...leg, isRecorderOrStreamer: state.recorderLegIds.has(leg.id) })),
    (leg) => leg.callId,
  );
  const instancesByKey = groupBy(state.instances, (call) => meetingKey(call));
  const outcomes = input.keys.map((key): MeetingOutcome => {
    const calls = instancesByKey.get(key) ?? [];
    const meetingLegs = calls.flatMap((c) => legsByCall.get(c.id) ?? []);
    const { level, decisiveLegId, participants } = meetingLevel(meetingLegs, input.policy);
    // The participant whose join, admission or departure changed the level: one of this transaction's legs.
    const cause =
      meetingLegs.find((l) => l.id === decisiveLegId && changedLegs.has(l.id)) ?? meetingLegs.find((l) => changedLegs.has(l.id));
    return {
      meetingKey: key,
      level,
      decisiveLegId,
      reason: participants.find((p) => p.legId === decisiveLegId)?.classification ?? null,
      causeLegId: cause?.id ?? decisiveLegId,
    };
  });
  return settleMeetings(outcomes, { ...input, instancesByKey, meetings: state.meetings, messages: state.messages });
}

/** A counted participant of a call instance: its level and why, as the policy classified it. */
export interface CountedParticipant {
  callId: string;
  legId: string;
  level: Level;
  classification: Classification;
}

/**
 * The counted participants among these legs (countsAsParticipant), each with its classification: what is kept of a
 * meeting's legs between decisions, so that a change is decided from the changed legs and these, not from every leg
 * again (decideFromParticipants).
 */
export function countedParticipants(
  legs: readonly (LegFacts & { callId: string })[],
  recorderLegIds: ReadonlySet<string>,
  policy: CompiledPolicy,
): CountedParticipant[] {
  const counted: CountedParticipant[] = [];
  for (const leg of legs) {
    const facts = { ...leg, isRecorderOrStreamer: recorderLegIds.has(leg.id) };
    if (!countsAsParticipant(facts, policy).counts) continue;
    const classification = classifyLeg(facts, policy);
    counted.push({ callId: leg.callId, legId: leg.id, level: classification.level, classification });
  }
  return counted;
}

export interface DecideFromParticipantsInput {
  keys: readonly string[];
  /** Every call instance of these meetings, in the order decideMeetings takes them (the same order as its state). */
  instances: readonly CallInstance[];
  /**
   * The first counted participant at the worst level of each instance (the first in the order decideMeetings takes
   * legs), from the stored participants after this transaction's changes; an instance with none counted has none.
   */
  worstByInstance: readonly CountedParticipant[];
  /** The legs of these instances whose facts changed now, in the order decideMeetings takes legs. */
  changedLegs: readonly { id: string; callId: string }[];
  meetings: readonly StoredMeeting[];
  messages: readonly StoredMessage[];
  policy: CompiledPolicy;
  managedNodes: ReadonlySet<string>;
}

/**
 * The same decision as decideMeetings, from each instance's worst participant instead of every leg: a change to a
 * meeting of a thousand participants costs the legs that changed, not the thousand. The worst participant of the
 * meeting is the worst of its instances' (the first instance's on a tie), exactly the participant meetingLevel
 * finds first at the worst level when the legs are taken instance by instance.
 */
export function decideFromParticipants(input: DecideFromParticipantsInput): MeetingsDecision {
  const instancesByKey = groupBy(input.instances, (call) => meetingKey(call));
  const worstByCall = new Map(input.worstByInstance.map((p) => [p.callId, p]));
  const changedByCall = groupBy(input.changedLegs, (leg) => leg.callId);
  const outcomes = input.keys.map((key): MeetingOutcome => {
    const calls = instancesByKey.get(key) ?? [];
    let worst: CountedParticipant | undefined;
    for (const call of calls) {
      const candidate = worstByCall.get(call.id);
      if (candidate && (!worst || candidate.level > worst.level)) worst = candidate;
    }
    const decisiveLegId = worst?.legId ?? null;
    const changed = calls.flatMap((c) => changedByCall.get(c.id) ?? []);
    const cause = changed.find((l) => l.id === decisiveLegId) ?? changed[0];
    return {
      meetingKey: key,
      level: worst?.level ?? null,
      decisiveLegId,
      reason: worst?.classification ?? null,
      causeLegId: cause?.id ?? decisiveLegId,
    };
  });
  return settleMeetings(outcomes, { ...input, instancesByKey });
}

/** A meeting's level and decisive participant, with what its level history entry needs. */
interface MeetingOutcome {
  meetingKey: string;
  level: Level | null;
  decisiveLegId: string | null;
  /** The decisive participant's classification; null when nobody counts. */
  reason: Classification | null;
  /** The participant a level change is recorded as caused by. */
  causeLegId: string | null;
}

/** From each meeting's outcome: the rows to write, the level history and the desired messages (see decideMeetings). */
function settleMeetings(
  outcomes: readonly MeetingOutcome[],
  context: {
    instancesByKey: ReadonlyMap<string, readonly CallInstance[]>;
    meetings: readonly StoredMeeting[];
    messages: readonly StoredMessage[];
    policy: CompiledPolicy;
    managedNodes: ReadonlySet<string>;
  },
): MeetingsDecision {
  const { policy, managedNodes } = context;
  const currentByKey = new Map(context.meetings.map((m) => [m.meetingKey, m]));
  const messageByCall = new Map(context.messages.map((m) => [m.callId, m]));
  const decision: MeetingsDecision = { levels: [], meetings: [], levelChanges: [], messages: [], writes: [] };
  for (const { meetingKey: key, level, decisiveLegId, reason, causeLegId } of outcomes) {
    decision.levels.push({ meetingKey: key, level, decisiveLegId });
    const before = currentByKey.get(key);
    if (!before || before.level !== level || before.decisiveLegId !== decisiveLegId) {
      decision.meetings.push({ meetingKey: key, level, decisiveLegId });
    }
    const oldLevel = before?.level ?? null;
    if (oldLevel !== level) decision.levelChanges.push({ meetingKey: key, oldLevel, newLevel: level, causeLegId, reason });
    const desired = desiredMessage(level, policy);
    const position = 'messagePosition' in desired ? desired.messagePosition : null;
    for (const call of context.instancesByKey.get(key) ?? []) {
      if (call.endedAt) continue;
      const existing = messageByCall.get(call.id);
      if (
        existing &&
        existing.messageText === desired.messageText &&
        existing.messagePosition === position &&
        existing.messageDuration === desired.messageDuration
      ) {
        continue;
      }
      // A meeting that never showed a message has nothing to clear.
      if (!existing && desired.messageText === '') continue;
      const status: DesiredMessageStatus = !call.node ? 'unplaced' : managedNodes.has(call.node) ? 'pending' : 'unmanaged';
      decision.messages.push({
        callId: call.id,
        node: call.node,
        meetingKey: key,
        level,
        messageText: desired.messageText,
        messagePosition: position,
        messageDuration: desired.messageDuration,
        status,
      });
      if (status === 'pending' && call.node) {
        decision.writes.push({ callId: call.id, node: call.node, meetingKey: key, messageText: desired.messageText });
      }
    }
  }
  return decision;
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    let list = groups.get(key);
    if (!list) {
      list = [];
      groups.set(key, list);
    }
    list.push(item);
  }
  return groups;
}

/** A meeting decided under a call's own id (before its callStart arrived) that now belongs to its callCorrelator. */
export interface ProvisionalMove {
  from: string;
  to: string;
}

/**
 * The meetings touched by these calls, and what must be locked before deciding them. Until its callStart
 * arrives a call is its own meeting, keyed by its call id (Cisco sends a leg's records before the callStart);
 * once its callCorrelator is known, that provisional meeting may have to move to the real one (`candidates`),
 * so its key is locked too.
 */
export function meetingsTouched(calls: readonly Pick<CallInstance, 'id' | 'callCorrelator'>[]): {
  keys: string[];
  lockKeys: string[];
  candidates: ProvisionalMove[];
} {
  const keys = [...new Set(calls.map((c) => meetingKey(c)))].sort();
  const candidates = calls
    .filter((c) => c.callCorrelator && c.callCorrelator !== c.id)
    .map((c) => ({ from: c.id, to: c.callCorrelator as string }));
  const lockKeys = [...new Set([...keys, ...candidates.map((c) => c.from)])].sort();
  return { keys, lockKeys, candidates };
}

/**
 * The provisional meetings to adopt: only a call decided before its callStart arrived has anything stored under
 * its call id, and then always a meetings row (every decision writes one). `decidedKeys` are the candidates'
 * keys that have such a row.
 */
export function provisionalMoves(candidates: readonly ProvisionalMove[], decidedKeys: ReadonlySet<string>): ProvisionalMove[] {
  return candidates.filter((m) => decidedKeys.has(m.from));
}
