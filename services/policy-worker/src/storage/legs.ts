import { callLegs, LEG_ENDED_BY_RECONCILIATION, recordset } from '@cms/db';
import { getTableColumns, sql } from 'drizzle-orm';
import type { Tx } from '../transaction.ts';
import type { CallRow } from './call-patch.ts';
import { conflictSet } from './conflict-set.ts';
import { extendsLeg, foldLeg, foldOnto, type LegRecord, type LegRow } from './leg-fold.ts';
import type { BatchRecord } from './records.ts';

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
// Legs are recomputed from all their records: overwrite.
const LEG_OVERWRITE = conflictSet(callLegs, ['id'], (c) => `excluded."${c}"`);

export interface LegsUpdate {
  /** Legs whose policy facts changed (policyFactsChanged). */
  legIds: string[];
  /** The calls of those legs, before and after: their meetings are to be decided again. */
  callIds: string[];
  /** Call rows for the calls legs name, in case their callStart has not arrived (written with the call patches). */
  placeholders: CallRow[];
}

/** Folds the new records of call legs into their call_legs rows. */
export async function updateLegs(tx: Tx, fresh: readonly BatchRecord[]): Promise<LegsUpdate> {
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
  const storedByLeg = await storedLegRecords(tx, [...refold], refoldSince([...refold].map((id) => before.get(id))));
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

/**
 * How far back the records of legs to refold can be: a leg's records come from its Call Bridge's clock, callLegStart
 * first, so none is older than the leg's start (a day's margin for a clock stepped back meanwhile). Bounding the read
 * by it prunes cdr_records to the month or two of the leg instead of probing every month's index (16 partitions on a
 * year's database). Null, reading every partition, when a leg has no start yet (its callLegStart is what is late).
 */
function refoldSince(rows: readonly (Pick<LegRow, 'startedAt'> | undefined)[]): string | null {
  let since: number | null = null;
  for (const row of rows) {
    const started = row?.startedAt ? Date.parse(row.startedAt) : Number.NaN;
    if (Number.isNaN(started)) return null;
    since = since === null ? started : Math.min(since, started);
  }
  return since === null ? null : new Date(since - CLOCK_STEP_MARGIN_MS).toISOString();
}

const CLOCK_STEP_MARGIN_MS = 24 * 3600_000;

/** Every stored record of these legs since `since` (every one when null), for refolding them. */
async function storedLegRecords(tx: Tx, legIds: string[], since: string | null): Promise<Map<string, LegRecord[]>> {
  const byLeg = new Map<string, LegRecord[]>();
  if (!legIds.length) return byLeg;
  const bound = since === null ? sql`` : sql` AND time >= ${since}::timestamptz`;
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
        FROM cdr_records WHERE call_leg_id IS NOT NULL AND call_leg_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(legIds)}::jsonb)) AND type LIKE 'callLeg%'${bound}`,
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

/**
 * Whether a leg's new row can change its meeting's level: a new leg, a changed fact the policy reads, or a leg
 * that connected or ended (times matter to the policy only as "has it connected / ended yet").
 */
export function policyFactsChanged(before: LegRow | undefined, after: LegRow): boolean {
  if (!before) return true;
  for (const field of POLICY_FIELDS) if ((before[field] ?? null) !== (after[field] ?? null)) return true;
  return !before.connectedAt !== !after.connectedAt || !before.endedAt !== !after.endedAt;
}
