import type { Database } from '@cms/db';
import type { ReceivedCdrBatch } from '@cms/queue';
import { noPolicyOutcome } from './security/apply-policy.ts';
import { classifyFailure, describeFailure } from './storage/pg-failure.ts';
import { insertQuarantine, type QuarantineRow, quarantineRow } from './storage/quarantine.ts';
import { type RefusedRecord, type SecurityPolicyOptions, type StoreResult, storeBatches } from './store-batches.ts';

/**
 * Stores a batch that Postgres refused as a whole (classifyFailure 'refused': a value it cannot store) one record
 * per transaction, so that only the records it refuses are left out. Each of those is quarantined with what
 * Postgres answered; the others are stored as usual. Safe to repeat: records are keyed on session +
 * correlatorIndex and quarantine rows on their content, so a retry after a partial run stores nothing twice.
 *
 * `run` wraps every transaction (the worker's outage guard: it waits while Postgres is unavailable).
 */
export async function storeRecordByRecord(
  db: Database,
  job: ReceivedCdrBatch,
  security: SecurityPolicyOptions | undefined,
  run: <T>(work: () => Promise<T>) => Promise<T>,
): Promise<StoreResult> {
  const total: StoreResult = {
    inserted: 0,
    duplicates: 0,
    quarantined: 0,
    gaps: [],
    policy: noPolicyOutcome(),
    newSessions: [],
    refused: [],
  };
  const positions = recordPositions(job);
  const quarantine: QuarantineRow[] = [];
  const refused: RefusedRecord[] = [];
  for (const [i, record] of job.batch.records.entries()) {
    const single: ReceivedCdrBatch = { ...job, batch: { ...job.batch, records: [record], rejected: [] } };
    try {
      const result = await run(() => storeBatches(db, [single], security));
      total.inserted += result.inserted;
      total.duplicates += result.duplicates;
      total.gaps.push(...result.gaps);
      total.policy.levelChanges.push(...result.policy.levelChanges);
      total.policy.writes.push(...result.policy.writes);
      total.newSessions.push(...result.newSessions);
    } catch (err) {
      if (classifyFailure(err) !== 'refused') throw err;
      const reason = `Postgres refused the record: ${describeFailure(err)}`;
      quarantine.push(quarantineRow(job, positions[i]!, reason, record.raw));
      refused.push({ session: job.batch.session, node: job.node, correlatorIndex: record.correlatorIndex, type: record.type, reason });
    }
  }
  // The records the parser rejected, and those Postgres refused, in one transaction at the end.
  for (const rejected of job.batch.rejected) quarantine.push(quarantineRow(job, rejected.position, rejected.reason, rejected.raw));
  if (quarantine.length) total.quarantined = await run(() => db.transaction((tx) => insertQuarantine(tx, quarantine)));
  total.refused = refused;
  return total;
}

/**
 * The position in the POST of each accepted record: the parser numbers every `<record>` from 0 and keeps the
 * rejected ones' positions, so the accepted ones fill the positions left, in order.
 */
function recordPositions(job: ReceivedCdrBatch): number[] {
  const taken = new Set(job.batch.rejected.map((r) => r.position));
  const positions: number[] = [];
  let next = 0;
  for (let i = 0; i < job.batch.records.length; i++) {
    while (taken.has(next)) next++;
    positions.push(next++);
  }
  return positions;
}
