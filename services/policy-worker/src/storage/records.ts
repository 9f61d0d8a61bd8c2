import type { CdrRecord } from '@cms/cdr';
import { cdrGaps, cdrRecords, cdrSessions, recordset } from '@cms/db';
import type { ReceivedCdrBatch } from '@cms/queue';
import { sql } from 'drizzle-orm';
import type { Tx } from '../transaction.ts';

/** A record and the batch it came in; `fresh` ones were new to the database in this transaction. */
export interface BatchRecord {
  record: CdrRecord;
  job: ReceivedCdrBatch;
}

export interface StoredGap {
  session: string;
  callBridge: string | null;
  node: string | null;
  correlatorIndex: number;
  missing: number;
}

export interface NewSession {
  session: string;
  node: string | null;
  callBridge: string | null;
}

const key = (session: string, correlatorIndex: number) => `${session}\u0000${correlatorIndex}`;

const RECORD_COLUMNS = recordset(cdrRecords, [
  'session',
  'correlatorIndex',
  'recordIndex',
  'callBridge',
  'node',
  'type',
  'time',
  'numPreceedingRecordsMissing',
  'callId',
  'callLegId',
  'callCorrelator',
  'raw',
]);

/** The group's records once each: the same batch posted twice can land in one group. */
export function uniqueRecords(jobs: readonly ReceivedCdrBatch[]): BatchRecord[] {
  const unique = new Map<string, BatchRecord>();
  for (const job of jobs) {
    for (const record of job.batch.records) {
      const k = key(job.batch.session, record.correlatorIndex);
      if (!unique.has(k)) unique.set(k, { record, job });
    }
  }
  return [...unique.values()];
}

/**
 * Inserts the records idempotently on (session, correlatorIndex), CMS's own unique key for a record. Returns the
 * ones new to the database: only they change the projections. The conflict target also names `time`, the month
 * partition key (Postgres requires it in a partitioned table's unique index): a re-sent record is the record CMS
 * sent before, with the same time, so it lands in the same partition and conflicts there.
 */
export async function insertRecords(tx: Tx, entries: readonly BatchRecord[]): Promise<BatchRecord[]> {
  if (!entries.length) return [];
  const rows = entries.map(({ record, job }) => ({
    session: job.batch.session,
    correlatorIndex: record.correlatorIndex,
    recordIndex: record.recordIndex,
    callBridge: job.batch.callBridge,
    node: job.node,
    type: record.type,
    time: record.time,
    numPreceedingRecordsMissing: record.numPreceedingRecordsMissing,
    callId: record.callId,
    callLegId: record.callLegId,
    callCorrelator: record.callCorrelator,
    raw: record.raw,
  }));
  const inserted = await tx.execute<{ session: string; correlator_index: string }>(
    sql`INSERT INTO cdr_records (${RECORD_COLUMNS.columns}) SELECT ${RECORD_COLUMNS.columns} FROM ${RECORD_COLUMNS.from(rows)}
        ON CONFLICT (session, correlator_index, time) DO NOTHING RETURNING session, correlator_index`,
  );
  const newKeys = new Set(inserted.rows.map((r) => key(r.session, Number(r.correlator_index))));
  return entries.filter(({ record, job }) => newKeys.has(key(job.batch.session, record.correlatorIndex)));
}

/** Where CMS discarded records before a new one (numPreceedingRecordsMissing): stored, and returned to report. */
export async function recordGaps(tx: Tx, fresh: readonly BatchRecord[]): Promise<StoredGap[]> {
  const gaps: StoredGap[] = [];
  const rows: (typeof cdrGaps.$inferInsert)[] = [];
  for (const { record, job } of fresh) {
    const missing = record.numPreceedingRecordsMissing;
    if (!missing) continue;
    gaps.push({
      session: job.batch.session,
      callBridge: job.batch.callBridge,
      node: job.node,
      correlatorIndex: record.correlatorIndex,
      missing,
    });
    rows.push({
      session: job.batch.session,
      callBridge: job.batch.callBridge,
      node: job.node,
      correlatorIndex: record.correlatorIndex,
      missing,
      time: record.time,
    });
  }
  if (rows.length) await tx.insert(cdrGaps).values(rows).onConflictDoNothing();
  return gaps;
}

/** Call Bridge sessions of new records seen for the first time (a bridge started or restarted). */
export async function updateSessions(tx: Tx, fresh: readonly BatchRecord[]): Promise<NewSession[]> {
  const sessions = new Map<string, { session: string; callBridge: string | null; node: string | null }>();
  for (const { job } of fresh) {
    if (!sessions.has(job.batch.session))
      sessions.set(job.batch.session, { session: job.batch.session, callBridge: job.batch.callBridge, node: job.node });
  }
  if (!sessions.size) return [];
  // DO NOTHING takes no lock on known sessions, and RETURNING gives exactly the sessions seen for the first time.
  return tx
    .insert(cdrSessions)
    .values([...sessions.values()].sort((a, b) => a.session.localeCompare(b.session)))
    .onConflictDoNothing({ target: cdrSessions.session })
    .returning({ session: cdrSessions.session, node: cdrSessions.node, callBridge: cdrSessions.callBridge });
}
