CREATE TABLE "call_legs" (
	"id" text PRIMARY KEY NOT NULL,
	"call_id" text,
	"node" text,
	"call_bridge" text,
	"session" text,
	"seq" bigint DEFAULT -1 NOT NULL,
	"display_name" text,
	"remote_party" text,
	"remote_address" text,
	"local_address" text,
	"type" text,
	"sub_type" text,
	"lync_sub_type" text,
	"direction" text,
	"guest_connection" boolean,
	"owner_id" text,
	"sip_call_id" text,
	"group_id" text,
	"cdr_tag" text,
	"state" text,
	"in_ivr" boolean,
	"deactivated" boolean,
	"started_at" timestamp with time zone,
	"connected_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	"end_reason" text,
	"duration_seconds" integer,
	"activated_duration" integer,
	"encrypted_media" boolean,
	"quality" jsonb,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "calls" (
	"id" text PRIMARY KEY NOT NULL,
	"node" text,
	"call_bridge" text,
	"session" text,
	"name" text,
	"owner_name" text,
	"call_type" text,
	"co_space" text,
	"tenant" text,
	"cdr_tag" text,
	"call_correlator" text,
	"started_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	"call_legs_completed" integer,
	"call_legs_max_active" integer,
	"duration_seconds" integer,
	"endpoint_recorded" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "cdr_gaps" (
	"session" text NOT NULL,
	"correlator_index" bigint NOT NULL,
	"call_bridge" text,
	"node" text,
	"missing" integer NOT NULL,
	"time" timestamp with time zone NOT NULL,
	"detected_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "cdr_gaps_session_correlator_index_pk" PRIMARY KEY("session","correlator_index")
);
--> statement-breakpoint
CREATE TABLE "cdr_quarantine" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"session" text,
	"call_bridge" text,
	"node" text,
	"position" integer NOT NULL,
	"reason" text NOT NULL,
	"raw" jsonb,
	"dedupe_key" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "cdr_records" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"session" text NOT NULL,
	"correlator_index" bigint NOT NULL,
	"record_index" bigint NOT NULL,
	"call_bridge" text,
	"node" text,
	"type" text NOT NULL,
	"time" timestamp with time zone NOT NULL,
	"num_preceeding_records_missing" integer,
	"call_id" text,
	"call_leg_id" text,
	"call_correlator" text,
	"raw" jsonb NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "cdr_sessions" (
	"session" text PRIMARY KEY NOT NULL,
	"call_bridge" text,
	"node" text,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"records" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX "call_legs_call_id_idx" ON "call_legs" USING btree ("call_id");--> statement-breakpoint
CREATE INDEX "calls_call_correlator_idx" ON "calls" USING btree ("call_correlator");--> statement-breakpoint
CREATE INDEX "calls_started_at_idx" ON "calls" USING btree ("started_at");--> statement-breakpoint
CREATE UNIQUE INDEX "cdr_quarantine_dedupe_key" ON "cdr_quarantine" USING btree ("dedupe_key");--> statement-breakpoint
CREATE UNIQUE INDEX "cdr_records_session_correlator_index" ON "cdr_records" USING btree ("session","correlator_index");--> statement-breakpoint
CREATE INDEX "cdr_records_type_idx" ON "cdr_records" USING btree ("type","id");--> statement-breakpoint
CREATE INDEX "cdr_records_call_id_idx" ON "cdr_records" USING btree ("call_id","id");--> statement-breakpoint
CREATE INDEX "cdr_records_call_leg_id_idx" ON "cdr_records" USING btree ("call_leg_id","id");--> statement-breakpoint
CREATE INDEX "cdr_records_call_correlator_idx" ON "cdr_records" USING btree ("call_correlator","id");--> statement-breakpoint
CREATE INDEX "cdr_records_node_idx" ON "cdr_records" USING btree ("node","id");--> statement-breakpoint
CREATE INDEX "cdr_records_time_idx" ON "cdr_records" USING btree ("time","id");