ALTER TABLE "cdr_sessions" DROP COLUMN "last_seen_at";--> statement-breakpoint
ALTER TABLE "cdr_sessions" DROP COLUMN "records";