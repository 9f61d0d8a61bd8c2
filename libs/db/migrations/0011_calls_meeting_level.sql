-- 0011_calls_meeting_level: GET /calls?level=N lists the calls whose meeting is at level N, newest start first.
-- With the level only on the meetings row, Postgres walked calls in start order and probed each call's meeting
-- (5,700-6,800 pages for a first page of level 1, which 1 call in 17 has; 2,300 for a deep page without planner
-- statistics; bench/scale.ts). Here each calls row carries a copy of its meeting's level, indexed in the list's
-- order, so the page is read where the index says whatever the statistics.
--
-- The copy is kept by triggers, so every writer of either table keeps it right, in the writer's transaction:
-- - a meetings row inserted, changing level, renamed (a provisional meeting adopted) or deleted: the calls of the
--   meeting (key = call_correlator, or the call's id when it has none, as callMeetingKey says) take its level;
-- - a call inserted, or its call_correlator changed (it joins another meeting): it takes its meeting's level.
-- Concurrency: a decision changes a meeting's level under the meeting's advisory lock (policy-worker
-- security/load-meetings.ts lockMeetings), and the worker writes call rows under the locks of their meetings
-- (policy-worker storage/calls.ts), so a call row is never written between a decision's read and its commit.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS level integer;
--> statement-breakpoint
UPDATE calls c SET level = m.level FROM meetings m
WHERE m.meeting_key = coalesce(nullif(c.call_correlator, ''), c.id) AND m.level IS NOT NULL AND c.level IS DISTINCT FROM m.level;
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS calls_level_started_at_idx ON calls (level, started_at DESC NULLS LAST, id);
--> statement-breakpoint
CREATE FUNCTION cms_meeting_level_to_calls() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- The calls of the key the row had (deleted or renamed) have no meeting row any more.
  IF TG_OP <> 'INSERT' THEN
    IF TG_OP = 'DELETE' OR OLD.meeting_key <> NEW.meeting_key THEN
      UPDATE calls SET level = NULL
      WHERE (call_correlator = OLD.meeting_key OR (id = OLD.meeting_key AND coalesce(call_correlator, '') = '')) AND level IS NOT NULL;
    END IF;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    UPDATE calls SET level = NEW.level
    WHERE (call_correlator = NEW.meeting_key OR (id = NEW.meeting_key AND coalesce(call_correlator, '') = ''))
      AND level IS DISTINCT FROM NEW.level;
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER meetings_level_to_calls_insert AFTER INSERT ON meetings
FOR EACH ROW EXECUTE FUNCTION cms_meeting_level_to_calls();
--> statement-breakpoint
-- The worker upserts a meetings row only when something changed, but the level often stays: only a new level or key.
CREATE TRIGGER meetings_level_to_calls_update AFTER UPDATE ON meetings
FOR EACH ROW WHEN (OLD.level IS DISTINCT FROM NEW.level OR OLD.meeting_key <> NEW.meeting_key)
EXECUTE FUNCTION cms_meeting_level_to_calls();
--> statement-breakpoint
CREATE TRIGGER meetings_level_to_calls_delete AFTER DELETE ON meetings
FOR EACH ROW EXECUTE FUNCTION cms_meeting_level_to_calls();
--> statement-breakpoint
-- A call joining a meeting. AFTER INSERT fires only for rows really inserted (not for the worker's upserts of rows
-- that exist), and most new calls start a meeting that has no row yet: then this is one primary-key probe.
CREATE FUNCTION cms_call_level_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE calls c SET level = m.level FROM meetings m
  WHERE c.id = NEW.id AND m.meeting_key = coalesce(nullif(NEW.call_correlator, ''), NEW.id) AND m.level IS NOT NULL;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER calls_level_on_insert AFTER INSERT ON calls
FOR EACH ROW EXECUTE FUNCTION cms_call_level_on_insert();
--> statement-breakpoint
-- A call whose callCorrelator arrives after it was stored (a placeholder row, or the events feed's) moves from its
-- provisional meeting (its id) to the real one. BEFORE UPDATE: the level is set in the same row version.
CREATE FUNCTION cms_call_level_on_key_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.level := (SELECT m.level FROM meetings m WHERE m.meeting_key = coalesce(nullif(NEW.call_correlator, ''), NEW.id));
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER calls_level_on_key_change BEFORE UPDATE OF call_correlator ON calls
FOR EACH ROW WHEN (OLD.call_correlator IS DISTINCT FROM NEW.call_correlator)
EXECUTE FUNCTION cms_call_level_on_key_change();
