-- 0009_calls_correlator_order: GET /calls?callCorrelator= lists a meeting's instances in the calls order
-- (started_at desc nulls last, id). With an index on call_correlator alone, Postgres without planner statistics
-- preferred walking the whole start-order index and filtering (50,000 pages, 0.4-2 s on 800,000 calls;
-- bench/scale.ts). With the order in the index, as node and coSpace have it since 0008, the filtered scan reads the
-- page and nothing else whatever the statistics say. Its leading column still serves `call_correlator = key`.
CREATE INDEX IF NOT EXISTS calls_call_correlator_started_at_idx ON calls (call_correlator, started_at DESC NULLS LAST, id);
--> statement-breakpoint
DROP INDEX IF EXISTS calls_call_correlator_idx;
