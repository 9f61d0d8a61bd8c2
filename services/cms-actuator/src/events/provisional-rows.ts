import type { Database } from '@cms/db';
import { sql } from 'drizzle-orm';

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

/** Columns of call_leg_observations that say something about the participant (all but id and participant_id). */
const FACTS = [
  'call_id',
  'node',
  'remote_party',
  'type',
  'sub_type',
  'state',
  'deactivated',
  'name',
  'direction',
  'activator',
  'audio_muted',
  'video_muted',
  'layout',
  'importance',
  'presenter',
  'active_speaker',
];

/**
 * The events feed keys a participant whose leg it does not know yet by the participant id. Once the leg id is known
 * (its CDRs, or a reconciliation read), that row becomes the leg's row: moved to the leg id, or merged into the row
 * the leg already has, each column from the fresher of the two where it has a value. So one participant is one row.
 */
export async function adoptProvisionalRows(tx: Tx | Database, pairs: readonly { legId: string; participantId: string }[]): Promise<void> {
  const json = JSON.stringify(pairs.filter((p) => p.legId !== p.participantId));
  if (json === '[]') return;
  const columns = sql.raw(FACTS.join(', '));
  const merged = sql.raw(
    FACTS.map(
      (c) =>
        `${c} = CASE WHEN excluded.updated_at >= t.updated_at THEN coalesce(excluded.${c}, t.${c}) ELSE coalesce(t.${c}, excluded.${c}) END`,
    ).join(', '),
  );
  await tx.execute(
    sql`WITH pairs AS (SELECT * FROM jsonb_to_recordset(${json}::jsonb) AS x("legId" text, "participantId" text)),
        moved AS (
          DELETE FROM call_leg_observations o USING pairs WHERE o.id = pairs."participantId"
          RETURNING pairs."legId" AS leg_id, o.participant_id, o.source, o.observed_at, o.updated_at, ${sql.raw(FACTS.map((c) => `o.${c}`).join(', '))}
        )
        INSERT INTO call_leg_observations AS t (id, participant_id, source, observed_at, updated_at, ${columns})
        SELECT leg_id, participant_id, source, observed_at, updated_at, ${columns} FROM moved
        ON CONFLICT (id) DO UPDATE SET participant_id = coalesce(excluded.participant_id, t.participant_id), ${merged},
          source = CASE WHEN excluded.updated_at >= t.updated_at THEN excluded.source ELSE t.source END,
          updated_at = greatest(excluded.updated_at, t.updated_at), observed_at = greatest(excluded.observed_at, t.observed_at)`,
  );
}
