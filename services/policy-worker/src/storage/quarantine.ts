import { createHash } from 'node:crypto';
import { cdrQuarantine } from '@cms/db';
import type { ReceivedCdrBatch } from '@cms/queue';
import type { Tx } from '../transaction.ts';

export type QuarantineRow = typeof cdrQuarantine.$inferInsert & { dedupeKey: string };

function quarantineKey(session: string | null, raw: unknown): string {
  return createHash('sha256')
    .update(`${session ?? ''}\n${JSON.stringify(raw)}`)
    .digest('hex');
}

/** Quarantines the records the parser rejected in these batches; returns how many were new. */
export async function quarantineRejected(tx: Tx, jobs: readonly ReceivedCdrBatch[]): Promise<number> {
  const rows: QuarantineRow[] = [];
  for (const job of jobs) {
    for (const rejected of job.batch.rejected) rows.push(quarantineRow(job, rejected.position, rejected.reason, rejected.raw));
  }
  return insertQuarantine(tx, rows);
}

/**
 * A cdr_quarantine row for a record of `job`, made storable whatever the record holds: Postgres text and jsonb
 * cannot hold U+0000 or unpaired surrogates, and the row that keeps a refused record must not be refused too.
 * Such characters are shown as U+FFFD and the reason says so; the dedupe key is taken from the record as sent.
 */
export function quarantineRow(job: ReceivedCdrBatch, position: number, reason: string, raw: unknown): QuarantineRow {
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
