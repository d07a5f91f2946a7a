DROP INDEX "jobs_queued_user_created_idx";--> statement-breakpoint
DROP INDEX "jobs_finished_at_idx";--> statement-breakpoint
CREATE INDEX "jobs_queued_user_created_id_idx" ON "jobs" USING btree ("user_id","created_at","id") WHERE "jobs"."status" = 'queued';--> statement-breakpoint
CREATE INDEX "jobs_queued_created_id_idx" ON "jobs" USING btree ("created_at","id") WHERE "jobs"."status" = 'queued';--> statement-breakpoint
CREATE INDEX "jobs_finished_at_user_idx" ON "jobs" USING btree ("finished_at","user_id") WHERE "jobs"."started_at" is not null;