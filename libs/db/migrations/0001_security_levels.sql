CREATE TABLE "call_messages" (
	"call_id" text PRIMARY KEY NOT NULL,
	"node" text,
	"meeting_key" text NOT NULL,
	"level" integer,
	"message_text" text NOT NULL,
	"message_position" text,
	"message_duration" text NOT NULL,
	"version" bigint DEFAULT 1 NOT NULL,
	"desired_at" timestamp with time zone DEFAULT now() NOT NULL,
	"applied_version" bigint,
	"applied_at" timestamp with time zone,
	"status" text DEFAULT 'pending' NOT NULL
);
--> statement-breakpoint
CREATE TABLE "cms_writes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"node" text NOT NULL,
	"kind" text NOT NULL,
	"call_id" text,
	"target" text,
	"desired_text" text,
	"version" bigint,
	"status" text NOT NULL,
	"http_status" integer,
	"failure_reason" text,
	"attempts" integer DEFAULT 1 NOT NULL,
	"latency_ms" integer
);
--> statement-breakpoint
CREATE TABLE "meeting_level_changes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"meeting_key" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"old_level" integer,
	"new_level" integer,
	"cause_leg_id" text,
	"reason" jsonb
);
--> statement-breakpoint
CREATE TABLE "meetings" (
	"meeting_key" text PRIMARY KEY NOT NULL,
	"level" integer,
	"decisive_leg_id" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "call_messages_meeting_idx" ON "call_messages" USING btree ("meeting_key");--> statement-breakpoint
CREATE INDEX "cms_writes_call_idx" ON "cms_writes" USING btree ("call_id","id");--> statement-breakpoint
CREATE INDEX "cms_writes_node_idx" ON "cms_writes" USING btree ("node","id");--> statement-breakpoint
CREATE INDEX "meeting_level_changes_meeting_idx" ON "meeting_level_changes" USING btree ("meeting_key","id");