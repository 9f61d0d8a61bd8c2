import type { Database } from '@cms/db';
import type { CompiledPolicy } from '@cms/policy';
import type { ReceivedCdrBatch } from '@cms/queue';
import { applySecurityPolicy, noPolicyOutcome, type PolicyOutcome } from './security/apply-policy.ts';
import { updateCalls } from './storage/calls.ts';
import { updateLegs } from './storage/legs.ts';
import { quarantineRejected } from './storage/quarantine.ts';
import { insertRecords, type NewSession, recordGaps, type StoredGap, uniqueRecords, updateSessions } from './storage/records.ts';

export interface StoreResult {
  /** Records new to the database. */
  inserted: number;
  /** Records already stored (CMS re-sends, regrouped batches, job retries). */
  duplicates: number;
  quarantined: number;
  gaps: StoredGap[];
  /** Level changes and CMS writes decided in the same transaction. */
  policy: PolicyOutcome;
  /** Call Bridge sessions seen for the first time (a bridge started or restarted). */
  newSessions: NewSession[];
  /** Records Postgres refused, quarantined with its answer (refused-records.ts); counted in `quarantined`. */
  refused?: RefusedRecord[];
}

export interface RefusedRecord {
  session: string;
  node: string | null;
  correlatorIndex: number;
  type: string;
  reason: string;
}

export interface SecurityPolicyOptions {
  compiled: CompiledPolicy;
  /** CMS nodes we hold API credentials for: only their calls get writes. */
  managedNodes: ReadonlySet<string>;
}

/**
 * Stores a group of batches in ONE transaction: records idempotently on (session, correlatorIndex), then the
 * projections of what was new (storage/), then the security decisions they call for (security/). Either
 * everything in the group is stored or nothing is (the jobs are retried).
 */
export async function storeBatches(
  db: Database,
  jobs: readonly ReceivedCdrBatch[],
  security?: SecurityPolicyOptions,
): Promise<StoreResult> {
  const entries = uniqueRecords(jobs);
  const total = jobs.reduce((n, j) => n + j.batch.records.length, 0);

  return db.transaction(async (tx) => {
    const fresh = await insertRecords(tx, entries);
    const legs = await updateLegs(tx, fresh);
    await updateCalls(tx, fresh, legs.placeholders);
    // Meetings to decide again: those of legs whose policy facts changed, and of calls a call, recording or
    // streaming record names (a recorder joining, a call ending, a callCorrelator arriving).
    const otherCallIds = fresh.filter((e) => e.record.objectKind !== 'callLeg' && e.record.callId).map((e) => e.record.callId as string);
    const touchedCallIds = [...new Set([...legs.callIds, ...otherCallIds])].sort();
    const policy = security
      ? await applySecurityPolicy(tx, { legIds: legs.legIds, callIds: touchedCallIds }, security.compiled, security.managedNodes)
      : noPolicyOutcome();
    const gaps = await recordGaps(tx, fresh);
    const newSessions = await updateSessions(tx, fresh);
    const quarantined = await quarantineRejected(tx, jobs);

    return {
      inserted: fresh.length,
      duplicates: total - fresh.length,
      quarantined,
      gaps,
      policy,
      newSessions,
    };
  });
}
