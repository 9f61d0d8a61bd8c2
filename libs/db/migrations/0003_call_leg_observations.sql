CREATE TABLE "call_leg_observations" (
	"id" text PRIMARY KEY NOT NULL,
	"call_id" text NOT NULL,
	"node" text NOT NULL,
	"remote_party" text,
	"type" text,
	"sub_type" text,
	"state" text,
	"deactivated" boolean,
	"observed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "call_leg_observations_call_idx" ON "call_leg_observations" USING btree ("call_id");--> statement-breakpoint
CREATE INDEX "call_leg_observations_node_idx" ON "call_leg_observations" USING btree ("node");