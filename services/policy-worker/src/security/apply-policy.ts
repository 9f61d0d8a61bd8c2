import { type CompiledPolicy, decideMeetings, type MeetingsDecision, meetingsTouched, provisionalMoves } from '@cms/policy';
import type { Tx } from '../transaction.ts';
import { decidedProvisionalKeys, loadCalls, loadMeetingState, lockMeetings } from './load-meetings.ts';
import { adoptProvisionalMeetings, persistDecision } from './persist-decisions.ts';

/** What a transaction decided: level changes to log and count, CMS writes to request once it has committed. */
export type PolicyOutcome = Pick<MeetingsDecision, 'levelChanges' | 'writes'>;

export function noPolicyOutcome(): PolicyOutcome {
  return { levelChanges: [], writes: [] };
}

/**
 * Recomputes the security level of every meeting the touched calls belong to, in the caller's transaction:
 * load (under the meetings' locks) -> decide (decideMeetings, pure, libs/policy) -> persist. Records a level
 * change with its cause, and sets the desired message of each of the meeting's live call instances (on every
 * bridge). Returns the writes to enqueue once the transaction has committed.
 */
export async function applySecurityPolicy(
  tx: Tx,
  touched: { legIds: string[]; callIds: string[] },
  policy: CompiledPolicy,
  managedNodes: ReadonlySet<string>,
): Promise<PolicyOutcome> {
  if (!touched.callIds.length) return noPolicyOutcome();
  const { keys, lockKeys, candidates } = meetingsTouched(await loadCalls(tx, touched.callIds));
  if (!keys.length) return noPolicyOutcome();
  await lockMeetings(tx, lockKeys);
  // Until its callStart arrives a call is its own meeting; what was decided under its call id moves to the real one.
  await adoptProvisionalMeetings(tx, provisionalMoves(candidates, await decidedProvisionalKeys(tx, candidates)));
  const state = await loadMeetingState(tx, keys);
  const decision = decideMeetings({ keys, state, changedLegIds: touched.legIds, policy, managedNodes });
  await persistDecision(tx, decision);
  return { levelChanges: decision.levelChanges, writes: decision.writes };
}
