-- 0010_participant_levels: the counted participants of each call instance as the policy worker last decided them,
-- so that a change to a meeting of a thousand participants is decided from the changed legs and each instance's
-- worst participant (one index read per instance), not by reading and classifying every leg again (bench/large-meeting.ts).
CREATE TABLE IF NOT EXISTS participant_levels (
  leg_id text PRIMARY KEY,
  call_id text NOT NULL,
  level integer NOT NULL,
  classification jsonb NOT NULL
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS participant_levels_worst_idx ON participant_levels (call_id, level DESC, leg_id);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS participant_level_syncs (
  call_id text PRIMARY KEY,
  policy text NOT NULL,
  synced_at timestamptz NOT NULL DEFAULT now()
);
