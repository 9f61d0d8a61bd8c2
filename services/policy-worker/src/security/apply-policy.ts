import {
  type CallInstance,
  type CompiledPolicy,
  countedParticipants,
  decideFromParticipants,
  decideMeetings,
  type MeetingsDecision,
  meetingKey,
  meetingsTouched,
  provisionalMoves,
} from '@cms/policy';
import type { Tx } from '../transaction.ts';
import {
  decidedProvisionalKeys,
  loadCalls,
  loadInstances,
  loadLegs,
  loadMeetingState,
  loadRecorderLegIds,
  loadStoredDecisions,
  lockMeetings,
} from './load-meetings.ts';
import { replaceInstanceParticipants, syncedInstances, updateChangedParticipants, worstParticipants } from './participant-levels.ts';
import { adoptProvisionalMeetings, persistDecision } from './persist-decisions.ts';

/**
 * How a transaction's meetings were decided, for the policy_decision_* metrics: `changed` from the changed legs and
 * each instance's worst stored participant, `all` from every leg of the meeting (a recompute, or an instance decided
 * for the first time or under another policy).
 */
export interface DecisionCost {
  seconds: number;
  /** Meetings decided from their changed legs, and from all of their legs. */
  meetingsByChanges: number;
  meetingsByAllLegs: number;
  /** Legs read and classified. */
  legsRead: number;
}

/** What a transaction decided: level changes to log and count, CMS writes to request once it has committed. */
export type PolicyOutcome = Pick<MeetingsDecision, 'levelChanges' | 'writes'> & { cost?: DecisionCost };

export function noPolicyOutcome(): PolicyOutcome {
  return { levelChanges: [], writes: [] };
}

/**
 * Recomputes the security level of every meeting the touched calls belong to, in the caller's transaction:
 * load (under the meetings' locks) -> decide (libs/policy, pure) -> persist. Records a level change with its cause,
 * and sets the desired message of each of the meeting's live call instances (on every bridge). Returns the writes to
 * enqueue once the transaction has committed.
 *
 * A meeting whose instances all hold their counted participants (participant_levels) under this policy is decided
 * from the legs whose facts changed (`touched.legIds`) and each instance's worst participant: the cost of a change
 * does not grow with the meeting. `allLegs` (a recompute: CMS's live view changed, which no leg id names) and an
 * instance not yet held decide from every leg (decideMeetings) and store the counted participants for next time.
 */
export async function applySecurityPolicy(
  tx: Tx,
  touched: { legIds: string[]; callIds: string[]; allLegs?: boolean },
  policy: CompiledPolicy,
  managedNodes: ReadonlySet<string>,
): Promise<PolicyOutcome> {
  if (!touched.callIds.length) return noPolicyOutcome();
  const { keys, lockKeys, candidates } = meetingsTouched(await loadCalls(tx, touched.callIds));
  if (!keys.length) return noPolicyOutcome();
  await lockMeetings(tx, lockKeys);
  const started = performance.now();
  // Until its callStart arrives a call is its own meeting; what was decided under its call id moves to the real one.
  await adoptProvisionalMeetings(tx, provisionalMoves(candidates, await decidedProvisionalKeys(tx, candidates)));
  const instances = await loadInstances(tx, keys);
  const synced = touched.allLegs
    ? new Set<string>()
    : await syncedInstances(
        tx,
        instances.map((c) => c.id),
        policy.fingerprint,
      );
  const byKey = new Map<string, CallInstance[]>();
  for (const call of instances) {
    const list = byKey.get(meetingKey(call));
    if (list) list.push(call);
    else byKey.set(meetingKey(call), [call]);
  }
  const held = (key: string) => (byKey.get(key) ?? []).every((call) => synced.has(call.id));
  const byChanges = keys.filter(held);
  const byAllLegs = keys.filter((key) => !held(key));

  const decisions: MeetingsDecision[] = [];
  let legsRead = 0;
  if (byAllLegs.length) {
    const calls = byAllLegs.flatMap((key) => byKey.get(key) ?? []);
    const state = await loadMeetingState(tx, byAllLegs, calls);
    legsRead += state.legs.length;
    decisions.push(decideMeetings({ keys: byAllLegs, state, changedLegIds: touched.legIds, policy, managedNodes }));
    const ids = calls.map((c) => c.id);
    await replaceInstanceParticipants(tx, ids, countedParticipants(state.legs, state.recorderLegIds, policy), policy.fingerprint);
  }
  if (byChanges.length) {
    const calls = byChanges.flatMap((key) => byKey.get(key) ?? []);
    const ids = calls.map((c) => c.id);
    const recorderLegIds = await loadRecorderLegIds(tx, ids);
    const changedLegs = touched.legIds.length ? await loadLegs(tx, ids, touched.legIds) : [];
    legsRead += changedLegs.length;
    await updateChangedParticipants(
      tx,
      changedLegs.map((l) => l.id),
      recorderLegIds,
      countedParticipants(changedLegs, recorderLegIds, policy),
    );
    decisions.push(
      decideFromParticipants({
        keys: byChanges,
        instances: calls,
        worstByInstance: await worstParticipants(tx, ids),
        changedLegs,
        ...(await loadStoredDecisions(tx, byChanges, ids)),
        policy,
        managedNodes,
      }),
    );
  }
  const decision = mergeDecisions(decisions);
  await persistDecision(tx, decision);
  return {
    levelChanges: decision.levelChanges,
    writes: decision.writes,
    cost: {
      seconds: (performance.now() - started) / 1000,
      meetingsByChanges: byChanges.length,
      meetingsByAllLegs: byAllLegs.length,
      legsRead,
    },
  };
}

function mergeDecisions(decisions: readonly MeetingsDecision[]): MeetingsDecision {
  return {
    levels: decisions.flatMap((d) => d.levels),
    meetings: decisions.flatMap((d) => d.meetings),
    levelChanges: decisions.flatMap((d) => d.levelChanges),
    messages: decisions.flatMap((d) => d.messages),
    writes: decisions.flatMap((d) => d.writes),
  };
}
