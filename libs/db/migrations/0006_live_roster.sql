-- Live roster facts (CMS events feed, or paced polling where the feed is unavailable) beside what CDRs say.
ALTER TABLE "call_leg_observations" ADD COLUMN "participant_id" text;--> statement-breakpoint
ALTER TABLE "call_leg_observations" ADD COLUMN "name" text;--> statement-breakpoint
ALTER TABLE "call_leg_observations" ADD COLUMN "direction" text;--> statement-breakpoint
ALTER TABLE "call_leg_observations" ADD COLUMN "activator" boolean;--> statement-breakpoint
ALTER TABLE "call_leg_observations" ADD COLUMN "audio_muted" boolean;--> statement-breakpoint
ALTER TABLE "call_leg_observations" ADD COLUMN "video_muted" boolean;--> statement-breakpoint
ALTER TABLE "call_leg_observations" ADD COLUMN "layout" text;--> statement-breakpoint
ALTER TABLE "call_leg_observations" ADD COLUMN "importance" integer;--> statement-breakpoint
ALTER TABLE "call_leg_observations" ADD COLUMN "presenter" boolean;--> statement-breakpoint
ALTER TABLE "call_leg_observations" ADD COLUMN "active_speaker" boolean;--> statement-breakpoint
ALTER TABLE "call_leg_observations" ADD COLUMN "source" text DEFAULT 'polling' NOT NULL;--> statement-breakpoint
ALTER TABLE "call_leg_observations" ADD COLUMN "updated_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
CREATE INDEX "call_leg_observations_participant_idx" ON "call_leg_observations" USING btree ("participant_id");--> statement-breakpoint
CREATE INDEX "call_leg_observations_lobby_idx" ON "call_leg_observations" USING btree ("call_id") WHERE deactivated;--> statement-breakpoint
CREATE TABLE "cms_node_status" (
	"node" text PRIMARY KEY NOT NULL,
	"mode" text NOT NULL,
	"health" text,
	"detail" jsonb,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
