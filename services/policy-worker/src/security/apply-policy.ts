import {
  type CompiledPolicy,
  countedParticipants,
  decideFromParticipants,
  type MeetingsDecision,
  meetingsTouched,
  provisionalMoves,
} from '@cms/policy';
import type { Tx } from '../transaction.ts';
import {
  decidedProvisionalKeys,
  loadCalls,
  loadInstances,
  loadLegs,
  loadRecorderLegIds,
  loadStoredDecisions,
  lockMeetings,
} from './load-meetings.ts';
import { replaceInstanceParticipants, syncedInstances, updateChangedParticipants, worstParticipants } from './participant-levels.ts';
import { adoptProvisionalMeetings, persistDecision } from './persist-decisions.ts';

/**
 * What a transaction's decisions cost, for the policy_decision_* metrics: legs read, and how many call instances were
 * read from every leg (a recompute's, or one decided for the first time or under another policy); none: only the
 * changed legs and each instance's worst stored participant were read.
 */
interface DecisionCost {
  seconds: number;
  instancesReread: number;
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
 * What is read does not grow with the meeting: participant_levels holds each instance's counted participants as last
 * decided, so a CDR batch reads the legs whose facts changed (`touched.legIds`), the meeting's recorder legs and each
 * instance's worst stored participant (decideFromParticipants: the decision decideMeetings makes from every leg).
 * An instance is read from every leg, and its participants stored again, when none are held for it under this policy
 * (its first decision, a changed policy), and, with `reread`, each touched call: a recompute, asked for when CMS's
 * live view of those calls changed. A recompute that says whose live view changed (`liveIds`: leg or participant ids,
 * the events feed's) reads only their legs instead.
 */
export async function applySecurityPolicy(
  tx: Tx,
  touched: { legIds: string[]; callIds: string[]; reread?: boolean; liveIds?: string[] },
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
  const ids = instances.map((c) => c.id);
  const held = await syncedInstances(tx, ids, policy.fingerprint);
  const liveIds = touched.reread ? touched.liveIds : undefined;
  if (touched.reread && !liveIds) for (const id of touched.callIds) held.delete(id);
  const reread = ids.filter((id) => !held.has(id));
  const kept = ids.filter((id) => held.has(id));
  const changed = new Set(touched.legIds);

  // Instances read from every leg: their participants are stored again; their changed legs are among those read.
  const everyLeg = reread.length ? await loadLegs(tx, reread) : [];
  if (reread.length) {
    const recorders = await loadRecorderLegIds(tx, reread);
    await replaceInstanceParticipants(tx, reread, countedParticipants(everyLeg, recorders, policy), policy.fingerprint);
  }
  // The other instances: only their changed legs (and the legs whose live view changed), and their recorder legs
  // (which never count).
  const changedLegs = kept.length && changed.size ? await loadLegs(tx, kept, { legIds: touched.legIds }) : [];
  const liveLegs = kept.length && liveIds?.length ? await loadLegs(tx, kept, { liveIds }) : [];
  if (kept.length) {
    const recorders = await loadRecorderLegIds(tx, kept);
    const read = [...new Map([...changedLegs, ...liveLegs].map((l) => [l.id, l])).values()];
    await updateChangedParticipants(
      tx,
      [...new Set([...read.map((l) => l.id), ...(liveIds ?? [])])],
      recorders,
      countedParticipants(read, recorders, policy),
    );
  }
  const decision = decideFromParticipants({
    keys,
    instances,
    worstByInstance: await worstParticipants(tx, ids),
    changedLegs: [...everyLeg.filter((l) => changed.has(l.id)), ...changedLegs],
    ...(await loadStoredDecisions(tx, keys, ids)),
    policy,
    managedNodes,
  });
  await persistDecision(tx, decision);
  return {
    levelChanges: decision.levelChanges,
    writes: decision.writes,
    cost: {
      seconds: (performance.now() - started) / 1000,
      instancesReread: reread.length,
      legsRead: everyLeg.length + changedLegs.length + liveLegs.length,
    },
  };
}
