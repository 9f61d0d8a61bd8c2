DROP INDEX "cdr_records_type_idx";--> statement-breakpoint
DROP INDEX "cdr_records_node_idx";--> statement-breakpoint
DROP INDEX "calls_started_at_idx";--> statement-breakpoint
CREATE INDEX "calls_started_at_idx" ON "calls" USING btree ("started_at" DESC NULLS LAST,"id");