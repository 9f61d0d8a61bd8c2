import { isDeepStrictEqual } from 'node:util';
import { participantLevelSyncs, participantLevels, recordset } from '@cms/db';
import type { Classification, CountedParticipant, Level } from '@cms/policy';
import { sql } from 'drizzle-orm';
import type { Tx } from '../transaction.ts';

/**
 * The counted participants of each call instance as last decided (participant_levels), and which instances hold all
 * of theirs under the current policy (participant_level_syncs). Read and written only under the meetings' locks, in
 * the deciding transaction: a change to a meeting rewrites the rows of its changed legs, and the meeting's level is
 * read back as each instance's worst participant, one index read per instance (participant_levels_worst_idx).
 */

const PARTICIPANT_COLUMNS = recordset(participantLevels, ['legId', 'callId', 'level', 'classification']);
const SYNC_COLUMNS = recordset(participantLevelSyncs, ['callId', 'policy']);

type Row<T> = T & Record<string, unknown>;

const asRows = (counted: readonly CountedParticipant[]) =>
  counted.map((p) => ({ legId: p.legId, callId: p.callId, level: p.level, classification: p.classification }));

/** The instances among these whose participant rows are complete under this policy fingerprint. */
export async function syncedInstances(tx: Tx, instanceIds: readonly string[], fingerprint: string): Promise<Set<string>> {
  if (!instanceIds.length) return new Set();
  const { rows } = await tx.execute<{ id: string }>(
    sql`SELECT call_id AS id FROM participant_level_syncs
        WHERE call_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(instanceIds)}::jsonb)) AND policy = ${fingerprint}`,
  );
  return new Set(rows.map((r) => r.id));
}

/** Writes these rows, leaving alone those already holding the same facts (a recompute that changes nothing writes nothing). */
async function upsertParticipants(tx: Tx, counted: readonly CountedParticipant[]): Promise<void> {
  if (!counted.length) return;
  await tx.execute(
    sql`INSERT INTO participant_levels (${PARTICIPANT_COLUMNS.columns}) SELECT ${PARTICIPANT_COLUMNS.columns} FROM ${PARTICIPANT_COLUMNS.from(asRows(counted))}
        ON CONFLICT (leg_id) DO UPDATE SET call_id = excluded.call_id, level = excluded.level, classification = excluded.classification
        WHERE (participant_levels.call_id, participant_levels.level, participant_levels.classification)
              IS DISTINCT FROM (excluded.call_id, excluded.level, excluded.classification)`,
  );
}

/**
 * Replaces the participant rows of these instances by `counted` (all of their counted participants, decided from all
 * of their legs) and marks them complete under this policy. Only the differences are written: a recompute of a
 * thousand participants of whom one changed writes one row.
 */
export async function replaceInstanceParticipants(
  tx: Tx,
  instanceIds: readonly string[],
  counted: readonly CountedParticipant[],
  fingerprint: string,
): Promise<void> {
  if (!instanceIds.length) return;
  const { rows } = await tx.execute<Row<CountedParticipant>>(
    sql`SELECT leg_id AS "legId", call_id AS "callId", level, classification FROM participant_levels
        WHERE call_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(instanceIds)}::jsonb))`,
  );
  const stored = new Map(rows.map((r) => [r.legId, r]));
  const countedIds = new Set(counted.map((p) => p.legId));
  const gone = rows.filter((r) => !countedIds.has(r.legId)).map((r) => r.legId);
  const changed = counted.filter((p) => {
    const before = stored.get(p.legId);
    return !before || before.callId !== p.callId || before.level !== p.level || !isDeepStrictEqual(before.classification, p.classification);
  });
  if (gone.length) {
    await tx.execute(
      sql`DELETE FROM participant_levels WHERE leg_id IN (SELECT jsonb_array_elements_text(${JSON.stringify(gone)}::jsonb))`,
    );
  }
  await upsertParticipants(tx, changed);
  await tx.execute(
    sql`INSERT INTO participant_level_syncs (${SYNC_COLUMNS.columns}) SELECT ${SYNC_COLUMNS.columns} FROM ${SYNC_COLUMNS.from(instanceIds.map((callId) => ({ callId, policy: fingerprint })))}
        ON CONFLICT (call_id) DO UPDATE SET policy = excluded.policy, synced_at = now() WHERE participant_level_syncs.policy <> excluded.policy`,
  );
}

/**
 * Applies the decision of the changed legs: each of `legIds` (leg or participant ids, and what they replace) either
 * counts now (`counted`) or no longer has a row. A leg a CDR names replaces the live view's row of its participant (keyed by the participant id,
 * or by another id of that participant); recorder and streamer legs never count.
 */
export async function updateChangedParticipants(
  tx: Tx,
  legIds: readonly string[],
  recorderLegIds: ReadonlySet<string>,
  counted: readonly CountedParticipant[],
): Promise<void> {
  const gone = JSON.stringify([...legIds, ...recorderLegIds]);
  const keep = JSON.stringify(counted.map((p) => p.legId));
  if (legIds.length || recorderLegIds.size) {
    await tx.execute(
      sql`WITH participants AS (
            SELECT group_id AS id FROM call_legs
            WHERE id IN (SELECT jsonb_array_elements_text(${gone}::jsonb)) AND group_id IS NOT NULL
            UNION ALL SELECT jsonb_array_elements_text(${gone}::jsonb)
          )
          DELETE FROM participant_levels
          WHERE (leg_id IN (SELECT jsonb_array_elements_text(${gone}::jsonb))
                 OR leg_id IN (SELECT id FROM participants)
                 OR leg_id IN (SELECT o.id FROM call_leg_observations o WHERE o.participant_id IN (SELECT id FROM participants)))
            AND leg_id NOT IN (SELECT jsonb_array_elements_text(${keep}::jsonb))`,
    );
  }
  await upsertParticipants(tx, counted);
}

/**
 * The worst counted participant of each of these instances, first by leg id on a tie: the participant meetingLevel
 * would find first at the instance's worst level (legs are read in id order). One index read per instance.
 */
export async function worstParticipants(tx: Tx, instanceIds: readonly string[]): Promise<CountedParticipant[]> {
  if (!instanceIds.length) return [];
  const { rows } = await tx.execute<Row<{ callId: string; legId: string; level: Level; classification: Classification }>>(
    sql`SELECT i.id AS "callId", w.leg_id AS "legId", w.level, w.classification
        FROM jsonb_array_elements_text(${JSON.stringify(instanceIds)}::jsonb) AS i(id)
        CROSS JOIN LATERAL (
          SELECT p.leg_id, p.level, p.classification FROM participant_levels p
          WHERE p.call_id = i.id ORDER BY p.level DESC, p.leg_id LIMIT 1
        ) w`,
  );
  return rows;
}
