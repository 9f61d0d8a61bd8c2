import { createHash } from 'node:crypto';
import type { CdrRecord } from '@cms/cdr';
import {
  callLegs,
  calls,
  cdrGaps,
  cdrQuarantine,
  cdrRecords,
  cdrSessions,
  type Database,
  LEG_ENDED_BY_RECONCILIATION,
  recordset,
} from '@cms/db';
import type { CompiledPolicy } from '@cms/policy';
import type { CdrBatchJob } from '@cms/queue';
import { getTableColumns, type SQL, sql } from 'drizzle-orm';
import { applySecurityPolicy, type PolicyOutcome } from '../security/apply-policy.ts';
import { type CallRow, callPatch, mergeCallPatches } from './call-patch.ts';
import { extendsLeg, foldLeg, foldOnto, type LegRecord, type LegRow } from './leg-fold.ts';

interface StoredGap {
  session: string;
  callBridge: string | null;
  node: string | null;
  correlatorIndex: number;
  missing: number;
}

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
  newSessions: { session: string; node: string | null; callBridge: string | null }[];
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

export type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

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
const LEG_KEYS = Object.keys(getTableColumns(callLegs)) as (keyof typeof callLegs.$inferInsert & string)[];
const LEG_COLUMNS = recordset(callLegs, LEG_KEYS);
const LEG_SELECT = sql.raw(
  Object.entries(getTableColumns(callLegs))
    .map(([key, column]) => `"${column.name}" AS "${key}"`)
    .join(', '),
);
const LEG_TIMESTAMP_KEYS = Object.entries(getTableColumns(callLegs))
  .filter(([, column]) => column.getSQLType().startsWith('timestamp'))
  .map(([key]) => key);
const CALL_KEYS = (Object.keys(getTableColumns(calls)) as (keyof typeof calls.$inferInsert & string)[]).filter((k) => k !== 'updatedAt');
const CALL_COLUMNS = recordset(calls, CALL_KEYS);

/** ON CONFLICT SET list as raw SQL text, built once per table. */
function conflictSet(table: typeof callLegs | typeof calls, skip: string[], expression: (column: string) => string): SQL {
  const parts: string[] = [];
  for (const [name, column] of Object.entries(getTableColumns(table))) {
    if (skip.includes(name)) continue;
    parts.push(`"${column.name}" = ${expression(column.name)}`);
  }
  return sql.raw(parts.join(', '));
}
// Legs are recomputed from all their records: overwrite. Calls keep the first non-null value of each field.
const LEG_OVERWRITE = conflictSet(callLegs, ['id'], (c) => `excluded."${c}"`);
const CALL_FILL_NULLS = conflictSet(calls, ['id', 'updatedAt'], (c) => `coalesce("calls"."${c}", excluded."${c}")`);

function quarantineKey(session: string | null, raw: unknown): string {
  return createHash('sha256')
    .update(`${session ?? ''}\n${JSON.stringify(raw)}`)
    .digest('hex');
}

/**
 * Stores a group of batches in ONE transaction: records idempotently on (session, correlatorIndex), then the
 * projections of what was new. Either everything in the group is stored or nothing is (the jobs are retried).
 */
export async function storeBatches(db: Database, jobs: readonly CdrBatchJob[], security?: SecurityPolicyOptions): Promise<StoreResult> {
  // Deduplicate inside the group first: the same batch posted twice can land in one group.
  const unique = new Map<string, { record: CdrRecord; job: CdrBatchJob }>();
  for (const job of jobs) {
    for (const record of job.batch.records) {
      const k = key(job.batch.session, record.correlatorIndex);
      if (!unique.has(k)) unique.set(k, { record, job });
    }
  }
  const entries = [...unique.values()];
  const total = jobs.reduce((n, j) => n + j.batch.records.length, 0);

  return db.transaction(async (tx) => {
    const newKeys = new Set<string>();
    if (entries.length) {
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
            ON CONFLICT (session, correlator_index) DO NOTHING RETURNING session, correlator_index`,
      );
      for (const r of inserted.rows) newKeys.add(key(r.session, Number(r.correlator_index)));
    }
    const fresh = entries.filter(({ record, job }) => newKeys.has(key(job.batch.session, record.correlatorIndex)));

    const { legIds: touchedLegIds, callIds: legCallIds, placeholders } = await updateLegs(tx, fresh);
    await updateCalls(tx, fresh, placeholders);
    // Meetings to decide again: those of legs whose policy facts changed, and of calls a call, recording or
    // streaming record names (a recorder joining, a call ending, a callCorrelator arriving).
    const otherCallIds = fresh.filter((e) => e.record.objectKind !== 'callLeg' && e.record.callId).map((e) => e.record.callId as string);
    const touchedCallIds = [...new Set([...legCallIds, ...otherCallIds])].sort();
    const policy = security
      ? await applySecurityPolicy(tx, { legIds: touchedLegIds, callIds: touchedCallIds }, security.compiled, security.managedNodes)
      : { levelChanges: [], writes: [] };
    const gaps = await recordGaps(tx, fresh);
    const newSessions = await updateSessions(tx, fresh);
    const quarantined = await quarantine(tx, jobs);

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

async function updateLegs(
  tx: Tx,
  fresh: { record: CdrRecord; job: CdrBatchJob }[],
): Promise<{ legIds: string[]; callIds: string[]; placeholders: CallRow[] }> {
  const legIds = [
    ...new Set(fresh.filter((e) => e.record.objectKind === 'callLeg' && e.record.callLegId).map((e) => e.record.callLegId as string)),
  ].sort();
  if (!legIds.length) return { legIds: [], callIds: [], placeholders: [] };
  // Serialise workers per leg (sorted, so two transactions never wait on each other in a cycle). After the
  // lock, READ COMMITTED sees every record committed by whoever held it before us.
  const ids = JSON.stringify(legIds);
  await tx.execute(
    sql`SELECT pg_advisory_xact_lock(k) FROM (SELECT hashtextextended(id, 7270) AS k FROM jsonb_array_elements_text(${ids}::jsonb) AS id ORDER BY 1) AS keys`,
  );
  const { rows: stored } = await tx.execute<Record<string, unknown>>(
    sql`SELECT ${LEG_SELECT} FROM call_legs WHERE id IN (SELECT jsonb_array_elements_text(${ids}::jsonb))`,
  );
  const before = new Map(stored.map((r) => legRowFromDatabase(r)).map((row) => [row.id, row]));
  const freshByLeg = new Map<string, LegRecord[]>();
  for (const { record, job } of fresh) {
    // The same records a refold reads back (storedLegRecords): a future record type naming a leg is stored and
    // indexed by it, but what it means for the leg is not known, so it is not folded in either way.
    if (record.objectKind !== 'callLeg' || !record.callLegId || !record.type.startsWith('callLeg')) continue;
    let list = freshByLeg.get(record.callLegId);
    if (!list) {
      list = [];
      freshByLeg.set(record.callLegId, list);
    }
    const { session, callBridge } = job.batch;
    list.push({
      session,
      correlatorIndex: record.correlatorIndex,
      type: record.type,
      time: record.time,
      node: job.node,
      callBridge,
      raw: record.raw,
    });
  }
  // Every stored record of a leg was folded into its row in the transaction that stored it. So a leg with no
  // row has no records but these, and records that come after everything in the row (as CMS sends them) fold
  // onto it. Only other legs (a late or out-of-order record) are refolded from all of their stored records.
  const refold = new Set(legIds.filter((id) => before.has(id) && !extendsLeg(before.get(id), freshByLeg.get(id) ?? [])));
  const storedByLeg = await storedLegRecords(tx, [...refold]);
  const rows: LegRow[] = [];
  const updatedAt = new Date().toISOString();
  for (const id of legIds) {
    const row = before.get(id);
    const records = freshByLeg.get(id) ?? [];
    const folded = !row ? foldLeg(id, records) : refold.has(id) ? foldLeg(id, storedByLeg.get(id) ?? []) : foldOnto(row, records);
    // Reconciliation ended this leg because CMS no longer has its call: a late record from before that end must
    // not bring the leg back into its meeting. Only a callLegEnd record (the real end) replaces ours.
    if (row?.endReason === LEG_ENDED_BY_RECONCILIATION && !folded.endedAt) {
      folded.endedAt = row.endedAt;
      folded.endReason = row.endReason;
    }
    rows.push({ ...folded, updatedAt });
  }
  await tx.execute(
    sql`INSERT INTO call_legs (${LEG_COLUMNS.columns}) SELECT ${LEG_COLUMNS.columns} FROM ${LEG_COLUMNS.from(rows)} ON CONFLICT (id) DO UPDATE SET ${LEG_OVERWRITE}`,
  );

  // A leg may name its call before the callStart arrives: a placeholder row (written with the call patches) keeps it listed.
  const placeholders = new Map<string, CallRow>();
  for (const row of rows) {
    if (row.callId && !placeholders.has(row.callId)) {
      placeholders.set(row.callId, {
        id: row.callId,
        node: row.node ?? null,
        callBridge: row.callBridge ?? null,
        session: row.session ?? null,
      });
    }
  }
  // Only legs whose policy facts changed can change a meeting's level (a re-sent 'connected', a new sipCallId
  // cannot); a leg that moved calls changes both meetings.
  const changed = rows.filter((row) => policyFactsChanged(before.get(row.id), row));
  const callIds = new Set<string>();
  for (const row of changed) {
    if (row.callId) callIds.add(row.callId);
    const old = before.get(row.id)?.callId;
    if (old) callIds.add(old);
  }
  return { legIds: changed.map((row) => row.id), callIds: [...callIds], placeholders: [...placeholders.values()] };
}

/** Every stored record of these legs, for refolding them. */
async function storedLegRecords(tx: Tx, legIds: string[]): Promise<Map<string, LegRecord[]>> {
  const byLeg = new Map<string, LegRecord[]>();
  if (!legIds.length) return byLeg;
  const { rows } = await tx.execute<{
    legId: string;
    session: string;
    correlatorIndex: string;
    type: string;
    time: string;
    node: string | null;
    callBridge: string | null;
    raw: LegRecord['raw'];
  }>(
    sql`SELECT call_leg_id AS "legId", session, correlator_index AS "correlatorIndex", type, time, node, call_bridge AS "callBridge", raw
        FROM cdr_records WHERE call_leg_id IS NOT NULL AND call_leg_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(legIds)}::jsonb)) AND type LIKE 'callLeg%'`,
  );
  for (const r of rows) {
    let list = byLeg.get(r.legId);
    if (!list) {
      list = [];
      byLeg.set(r.legId, list);
    }
    list.push({ ...r, correlatorIndex: Number(r.correlatorIndex), time: new Date(r.time).toISOString() });
  }
  return byLeg;
}

/** A call_legs row as the fold writes it: timestamps as ISO strings, seq as a number. */
function legRowFromDatabase(r: Record<string, unknown>): LegRow {
  const row: Record<string, unknown> = { ...r, seq: Number(r.seq) };
  for (const key of LEG_TIMESTAMP_KEYS) if (row[key] instanceof Date) row[key] = (row[key] as Date).toISOString();
  return row as LegRow;
}

/** The call_legs fields the security policy reads. */
const POLICY_FIELDS = [
  'callId',
  'type',
  'subType',
  'guestConnection',
  'remoteParty',
  'remoteAddress',
  'state',
  'inIvr',
  'deactivated',
] as const satisfies readonly (keyof LegRow)[];

function policyFactsChanged(before: LegRow | undefined, after: LegRow): boolean {
  if (!before) return true;
  for (const field of POLICY_FIELDS) if ((before[field] ?? null) !== (after[field] ?? null)) return true;
  // Times matter to the policy only as "has it connected / ended yet".
  return !before.connectedAt !== !after.connectedAt || !before.endedAt !== !after.endedAt;
}

/**
 * One sorted upsert for every call row the group writes (callStart/callEnd patches and placeholders for calls a
 * leg names first), so concurrent group commits lock call rows in the same order and never deadlock.
 */
async function updateCalls(tx: Tx, fresh: { record: CdrRecord; job: CdrBatchJob }[], placeholders: CallRow[]): Promise<void> {
  const patches = new Map<string, CallRow>();
  for (const { record, job } of fresh) {
    if (record.objectKind !== 'call') continue;
    const patch = callPatch(record, job.node, job.batch.callBridge, job.batch.session);
    if (!patch) continue;
    const prev = patches.get(patch.id);
    patches.set(patch.id, prev ? mergeCallPatches(prev, patch) : patch);
  }
  for (const placeholder of placeholders) {
    const prev = patches.get(placeholder.id);
    patches.set(placeholder.id, prev ? mergeCallPatches(prev, placeholder) : placeholder);
  }
  if (!patches.size) return;
  const rows = [...patches.values()].sort((a, b) => a.id.localeCompare(b.id));
  await tx.execute(
    sql`INSERT INTO calls (${CALL_COLUMNS.columns}) SELECT ${CALL_COLUMNS.columns} FROM ${CALL_COLUMNS.from(rows)}
        ON CONFLICT (id) DO UPDATE SET ${CALL_FILL_NULLS}, "updated_at" = now()`,
  );
}

async function recordGaps(tx: Tx, fresh: { record: CdrRecord; job: CdrBatchJob }[]): Promise<StoredGap[]> {
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

async function updateSessions(tx: Tx, fresh: { record: CdrRecord; job: CdrBatchJob }[]): Promise<StoreResult['newSessions']> {
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

async function quarantine(tx: Tx, jobs: readonly CdrBatchJob[]): Promise<number> {
  const rows: QuarantineRow[] = [];
  for (const job of jobs) {
    for (const rejected of job.batch.rejected) rows.push(quarantineRow(job, rejected.position, rejected.reason, rejected.raw));
  }
  return insertQuarantine(tx, rows);
}

export type QuarantineRow = typeof cdrQuarantine.$inferInsert & { dedupeKey: string };

/**
 * A cdr_quarantine row for a record of `job`, made storable whatever the record holds: Postgres text and jsonb
 * cannot hold U+0000 or unpaired surrogates, and the row that keeps a refused record must not be refused too.
 * Such characters are shown as U+FFFD and the reason says so; the dedupe key is taken from the record as sent.
 */
export function quarantineRow(job: CdrBatchJob, position: number, reason: string, raw: unknown): QuarantineRow {
  const changed = { value: false };
  const row: QuarantineRow = {
    session: storableText(job.batch.session, changed),
    callBridge: job.batch.callBridge === null ? null : storableText(job.batch.callBridge, changed),
    node: job.node === null ? null : storableText(job.node, changed),
    position,
    reason: storableText(reason, changed),
    raw: storableJson(raw, changed) as QuarantineRow['raw'],
    dedupeKey: quarantineKey(job.batch.session, raw),
  };
  if (changed.value) row.reason += ' (characters that cannot be stored, U+0000 or unpaired surrogates, are shown as U+FFFD)';
  return row;
}

/** Inserts quarantine rows once each (a re-sent batch, however regrouped, quarantines nothing twice). */
export async function insertQuarantine(tx: Tx, rows: readonly QuarantineRow[]): Promise<number> {
  const unique = new Map(rows.map((row) => [row.dedupeKey, row]));
  if (!unique.size) return 0;
  const inserted = await tx
    .insert(cdrQuarantine)
    .values([...unique.values()])
    .onConflictDoNothing()
    .returning({ id: cdrQuarantine.id });
  return inserted.length;
}

function storableText(text: string, changed: { value: boolean }): string {
  const storable = text.replaceAll('\u0000', '\uFFFD').toWellFormed();
  if (storable !== text) changed.value = true;
  return storable;
}

function storableJson(value: unknown, changed: { value: boolean }): unknown {
  if (typeof value === 'string') return storableText(value, changed);
  if (Array.isArray(value)) return value.map((v) => storableJson(v, changed));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      Object.defineProperty(out, storableText(key, changed), {
        value: storableJson(v, changed),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return value;
}
