-- Operator actions (call control through the actuator): the audit of every action, its per-node steps, and what
-- presenter mode changed so that turning it off restores it.
CREATE TABLE "operator_actions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"token_name" text NOT NULL,
	"role" text NOT NULL,
	"kind" text NOT NULL,
	"call_id" text,
	"leg_id" text,
	"meeting_key" text,
	"parameters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"idempotency_key" text,
	"request_hash" text,
	"status" text DEFAULT 'queued' NOT NULL,
	"http_status" integer,
	"failure_reason" text,
	"failure_parameter" text,
	"result" jsonb,
	"completed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "operator_action_steps" (
	"action_id" bigint NOT NULL,
	"step" integer NOT NULL,
	"node" text NOT NULL,
	"call_id" text,
	"params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"http_status" integer,
	"failure_reason" text,
	"failure_parameter" text,
	"result" jsonb,
	"writes" integer DEFAULT 0 NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"started_at" timestamp with time zone,
	"first_write_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"cms_ms" integer,
	CONSTRAINT "operator_action_steps_action_id_step_pk" PRIMARY KEY("action_id","step")
);
--> statement-breakpoint
CREATE TABLE "presenter_saved_legs" (
	"meeting_key" text NOT NULL,
	"call_leg_id" text NOT NULL,
	"node" text NOT NULL,
	"call_id" text NOT NULL,
	"participant_id" text,
	"previous" jsonb NOT NULL,
	"action_id" bigint NOT NULL,
	"saved_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "presenter_saved_legs_meeting_key_call_leg_id_pk" PRIMARY KEY("meeting_key","call_leg_id")
);
--> statement-breakpoint
CREATE TABLE "presenter_modes" (
	"meeting_key" text PRIMARY KEY NOT NULL,
	"presenter_leg_id" text NOT NULL,
	"action_id" bigint NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "operator_action_steps" ADD CONSTRAINT "operator_action_steps_action_id_operator_actions_id_fk" FOREIGN KEY ("action_id") REFERENCES "public"."operator_actions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "operator_actions_idempotency_idx" ON "operator_actions" USING btree ("token_name","idempotency_key") WHERE idempotency_key IS NOT NULL;--> statement-breakpoint
CREATE INDEX "operator_actions_call_idx" ON "operator_actions" USING btree ("call_id","id");--> statement-breakpoint
CREATE INDEX "operator_actions_meeting_idx" ON "operator_actions" USING btree ("meeting_key","id");--> statement-breakpoint
CREATE INDEX "operator_action_steps_queued_idx" ON "operator_action_steps" USING btree ("action_id") WHERE status = 'queued';
