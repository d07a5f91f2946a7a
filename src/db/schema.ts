// The database schema (drizzle pg-core): jobs, the base latents that buttons re-run, the
// append-only usage ledger and quota policies. `npm run db:generate` writes migrations/ from it.
import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  customType,
  date,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import type { GenerationRequest } from '../diffusion/request.ts';

const bytea = customType<{ data: Buffer; driverData: Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength),
});

const createdAt = () =>
  timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().default(sql`now()`);

export const jobStatus = pgEnum('job_status', ['queued', 'running', 'done', 'failed', 'cancelled']);
/** `imagine`: base + hires passes; `upscale`: hires passes from a finished job's base latent. */
export const jobKind = pgEnum('job_kind', ['imagine', 'upscale']);

export const jobs = pgTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    kind: jobKind('kind').notNull(),
    guildId: text('guild_id').notNull(),
    channelId: text('channel_id').notNull(),
    userId: text('user_id').notNull(),
    /** The member's roles when they asked: their budget (a role's quota) when the job settles. */
    roleIds: jsonb('role_ids').$type<string[]>().notNull().default([]),
    /** The full, validated request: enough to run the job again after a restart. */
    request: jsonb('request').$type<GenerationRequest>().notNull(),
    /** One upscaled image per value (a denoise comparison has several). */
    denoises: jsonb('denoises').$type<number[]>().notNull(),
    seed: doublePrecision('seed').notNull(),
    /** For `upscale` jobs: the job whose base latent they start from. */
    parentJobId: text('parent_job_id'),
    cost: doublePrecision('cost').notNull(),
    status: jobStatus('status').notNull().default('queued'),
    /** The process that holds the job, and when it last said it was alive. */
    owner: text('owner'),
    heartbeatAt: timestamp('heartbeat_at', { withTimezone: true, mode: 'date' }),
    /** Discord interaction token: lets a restarted bot still answer, until it expires. */
    interactionToken: text('interaction_token'),
    interactionExpiresAt: timestamp('interaction_expires_at', { withTimezone: true, mode: 'date' }),
    attempts: integer('attempts').notNull().default(0),
    /** A cancel written by a process that does not run the job; its worker aborts between steps. */
    cancelRequested: boolean('cancel_requested').notNull().default(false),
    createdAt: createdAt(),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
    error: text('error'),
    resultMessageIds: jsonb('result_message_ids').$type<string[]>(),
    timings: jsonb('timings').$type<Record<string, unknown>>(),
  },
  (t) => [
    // restart recovery scans unfinished jobs by owner liveness
    index('jobs_status_heartbeat_idx').on(t.status, t.heartbeatAt),
    // a user's recent jobs in a server (history, "my jobs")
    index('jobs_guild_user_created_idx').on(t.guildId, t.userId, t.createdAt),
    // the shared queue: each user's waiting jobs in order (id breaks ties, so no sort), for the
    // fair claim and positions
    index('jobs_queued_user_created_id_idx')
      .on(t.userId, t.createdAt, t.id)
      .where(sql`${t.status} = 'queued'`),
    // all waiting jobs oldest first: the oldest waiting job, and the claim's first users
    index('jobs_queued_created_id_idx').on(t.createdAt, t.id).where(sql`${t.status} = 'queued'`),
    // the fair claim counts each user's jobs that ran while the oldest waiting job waited: the
    // user beside the time, so those are counted from the index alone
    index('jobs_finished_at_user_idx').on(t.finishedAt, t.userId).where(sql`${t.startedAt} is not null`),
    // restart recovery's redraws: the done jobs whose delivery was never recorded (a few at most),
    // by heartbeat; without it each pass read every job that finished in the last day
    index('jobs_undelivered_heartbeat_idx')
      .on(t.heartbeatAt)
      .where(sql`${t.status} = 'done' and ${t.resultMessageIds} is null`),
  ],
);
export type JobRow = typeof jobs.$inferSelect;
export type NewJobRow = typeof jobs.$inferInsert;

export const jobLatents = pgTable('job_latents', {
  jobId: text('job_id')
    .primaryKey()
    .references(() => jobs.id, { onDelete: 'cascade' }),
  /** (channels, height/8, width/8) */
  shape: jsonb('shape').$type<[number, number, number]>().notNull(),
  /** float32 little-endian */
  data: bytea('data').notNull(),
  createdAt: createdAt(),
});
export type JobLatentRow = typeof jobLatents.$inferSelect;

/**
 * reserve: +cost at enqueue; refund: −cost when a job produced no images; commit: 0, marks
 * success; reset: an admin's −(day's usage). Rows are never updated or deleted.
 */
export const ledgerKind = pgEnum('ledger_kind', ['reserve', 'refund', 'commit', 'reset']);

export const usageLedger = pgTable(
  'usage_ledger',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    guildId: text('guild_id').notNull(),
    userId: text('user_id').notNull(),
    jobId: text('job_id'),
    kind: ledgerKind('kind').notNull(),
    units: doublePrecision('units').notNull(),
    /** The quota day the units count against (a refund counts against its reservation's day). */
    quotaDay: date('quota_day', { mode: 'string' }).notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    // a job is reserved, refunded or committed at most once, whatever retries happen
    uniqueIndex('usage_ledger_idempotency_key_idx').on(t.idempotencyKey),
    // the daily usage sum behind every reservation
    index('usage_ledger_user_day_idx').on(t.guildId, t.userId, t.quotaDay),
  ],
);
export type LedgerRow = typeof usageLedger.$inferSelect;
export type NewLedgerRow = typeof usageLedger.$inferInsert;

export const policyScope = pgEnum('policy_scope', ['guild', 'role', 'user']);

export const quotaPolicies = pgTable(
  'quota_policies',
  {
    guildId: text('guild_id').notNull(),
    scope: policyScope('scope').notNull(),
    /** The guild id for `guild`, else the role or user id. */
    targetId: text('target_id').notNull(),
    /** Daily units; null inherits, 0 = unlimited. */
    dailyUnits: doublePrecision('daily_units'),
    blocked: boolean('blocked').notNull().default(false),
    updatedBy: text('updated_by'),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().default(sql`now()`),
  },
  (t) => [primaryKey({ columns: [t.guildId, t.scope, t.targetId] })],
);
export type QuotaPolicyRow = typeof quotaPolicies.$inferSelect;

/**
 * A server's own generation settings (/settings): defaults under what members type, limits that
 * may only narrow the bot's MAX_* settings (null = the bot's), and a prompt word blocklist.
 */
export const guildSettings = pgTable('guild_settings', {
  guildId: text('guild_id').primaryKey(),
  defaults: jsonb('defaults')
    .$type<Partial<Omit<GenerationRequest, 'prompt' | 'seed'>>>()
    .notNull()
    .default({}),
  maxSteps: integer('max_steps'),
  maxBaseSide: integer('max_base_side'),
  maxHiresSide: integer('max_hires_side'),
  blockedWords: jsonb('blocked_words').$type<string[]>().notNull().default([]),
  updatedBy: text('updated_by'),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().default(sql`now()`),
});
export type GuildSettingsRow = typeof guildSettings.$inferSelect;

/**
 * The worker processes that are up, and the model each loaded, so that a gateway (which loads
 * none) writes the same infotexts and "made with another model" notes, and can tell its members
 * when no worker is there to run their jobs: a worker inserts its row as it starts, refreshes
 * `seen_at` with its heartbeat (the database's clock) and deletes the row when it stops cleanly.
 */
export const workerModels = pgTable('worker_models', {
  instanceId: text('instance_id').primaryKey(),
  model: jsonb('model')
    .$type<{ name: string; hash: string; oldHash?: string; vae?: { name: string; hash: string } }>()
    .notNull(),
  seenAt: timestamp('seen_at', { withTimezone: true, mode: 'date' }).notNull().default(sql`now()`),
  /** Among live workers, the one started last names the model (a stable choice between beats). */
  startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull().default(sql`now()`),
});
export type WorkerModelRow = typeof workerModels.$inferSelect;
