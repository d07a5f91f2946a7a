CREATE TYPE "public"."job_kind" AS ENUM('imagine', 'upscale');--> statement-breakpoint
CREATE TYPE "public"."job_status" AS ENUM('queued', 'running', 'done', 'failed', 'cancelled');--> statement-breakpoint
CREATE TYPE "public"."ledger_kind" AS ENUM('reserve', 'refund', 'commit', 'reset');--> statement-breakpoint
CREATE TYPE "public"."policy_scope" AS ENUM('guild', 'role', 'user');--> statement-breakpoint
CREATE TABLE "job_latents" (
	"job_id" text PRIMARY KEY NOT NULL,
	"shape" jsonb NOT NULL,
	"data" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"kind" "job_kind" NOT NULL,
	"guild_id" text NOT NULL,
	"channel_id" text NOT NULL,
	"user_id" text NOT NULL,
	"request" jsonb NOT NULL,
	"denoises" jsonb NOT NULL,
	"seed" double precision NOT NULL,
	"parent_job_id" text,
	"cost" double precision NOT NULL,
	"status" "job_status" DEFAULT 'queued' NOT NULL,
	"owner" text,
	"heartbeat_at" timestamp with time zone,
	"interaction_token" text,
	"interaction_expires_at" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"error" text,
	"result_message_ids" jsonb,
	"timings" jsonb
);
--> statement-breakpoint
CREATE TABLE "quota_policies" (
	"guild_id" text NOT NULL,
	"scope" "policy_scope" NOT NULL,
	"target_id" text NOT NULL,
	"daily_units" double precision,
	"blocked" boolean DEFAULT false NOT NULL,
	"updated_by" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "quota_policies_guild_id_scope_target_id_pk" PRIMARY KEY("guild_id","scope","target_id")
);
--> statement-breakpoint
CREATE TABLE "usage_ledger" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"guild_id" text NOT NULL,
	"user_id" text NOT NULL,
	"job_id" text,
	"kind" "ledger_kind" NOT NULL,
	"units" double precision NOT NULL,
	"quota_day" date NOT NULL,
	"idempotency_key" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "job_latents" ADD CONSTRAINT "job_latents_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "jobs_status_heartbeat_idx" ON "jobs" USING btree ("status","heartbeat_at");--> statement-breakpoint
CREATE INDEX "jobs_guild_user_created_idx" ON "jobs" USING btree ("guild_id","user_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "usage_ledger_idempotency_key_idx" ON "usage_ledger" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "usage_ledger_user_day_idx" ON "usage_ledger" USING btree ("guild_id","user_id","quota_day");