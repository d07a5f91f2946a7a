CREATE TABLE "worker_models" (
	"instance_id" text PRIMARY KEY NOT NULL,
	"model" jsonb NOT NULL,
	"seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "cancel_requested" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX "jobs_queued_user_created_idx" ON "jobs" USING btree ("user_id","created_at") WHERE "jobs"."status" = 'queued';--> statement-breakpoint
CREATE INDEX "jobs_finished_at_idx" ON "jobs" USING btree ("finished_at");--> statement-breakpoint
-- Every new job and every status move is announced on hiresbot_queue as status:id:owner, in the
-- transaction that makes it (delivered on commit): workers wake for new jobs, the process that
-- queued a job hears who took it, when it ended, and when other positions moved.
CREATE OR REPLACE FUNCTION "hiresbot_job_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('hiresbot_queue', NEW."status"::text || ':' || NEW."id" || ':' || coalesce(NEW."owner", ''));
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER "jobs_notify_insert" AFTER INSERT ON "jobs" FOR EACH ROW EXECUTE FUNCTION "hiresbot_job_notify"();--> statement-breakpoint
CREATE TRIGGER "jobs_notify_status" AFTER UPDATE OF "status", "owner" ON "jobs" FOR EACH ROW
  WHEN (OLD."status" IS DISTINCT FROM NEW."status" OR OLD."owner" IS DISTINCT FROM NEW."owner")
  EXECUTE FUNCTION "hiresbot_job_notify"();
