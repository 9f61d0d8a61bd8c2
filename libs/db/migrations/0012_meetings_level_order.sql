-- 0012_meetings_level_order: GET /meetings?level=N lists the meetings at level N, latest decision first. With only
-- (updated_at desc, meeting_key) Postgres walked the meetings in that order and dropped those at another level, a
-- heap fetch each (2,600 meetings read for a first page of 50 on 700,000 meetings; bench/scale.ts). An index in the
-- list's order behind the level reads the page where it starts, with and without planner statistics.
CREATE INDEX IF NOT EXISTS meetings_level_updated_at_idx ON meetings (level, updated_at DESC, meeting_key);
