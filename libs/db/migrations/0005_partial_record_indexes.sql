DROP INDEX "cdr_records_call_id_idx";--> statement-breakpoint
DROP INDEX "cdr_records_call_leg_id_idx";--> statement-breakpoint
DROP INDEX "cdr_records_call_correlator_idx";--> statement-breakpoint
CREATE INDEX "cdr_records_recorder_idx" ON "cdr_records" USING btree ("call_id") WHERE type IN ('recordingStart', 'streamingStart');--> statement-breakpoint
CREATE INDEX "cdr_records_call_id_idx" ON "cdr_records" USING btree ("call_id","id") WHERE call_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX "cdr_records_call_leg_id_idx" ON "cdr_records" USING btree ("call_leg_id","id") WHERE call_leg_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX "cdr_records_call_correlator_idx" ON "cdr_records" USING btree ("call_correlator","id") WHERE call_correlator IS NOT NULL;