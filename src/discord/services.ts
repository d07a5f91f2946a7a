/**
 * What the Discord front end needs from the rest of the bot, as plain data. The job service
 * (src/jobs/) and the database implement it; the commands and the router see only this.
 * Operations a member can get wrong throw a `UserError` (code + plain-data context); the front
 * end turns that into words.
 */
import type { GenerationRequest } from '../diffusion/request.ts';
import type { ModelInfo } from './build-request.ts';
import type { GuildSettings, StoredGuildSettings } from './settings.ts';

export type JobKind = 'imagine' | 'upscale';
export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** Who asks, where: enough for quotas (roles), ownership and admin checks. */
export interface Requester {
  guildId: string;
  channelId: string;
  userId: string;
  roleIds: readonly string[];
  /** Manage Server, as Discord reported it in this interaction. */
  isAdmin: boolean;
}

export interface Usage {
  used: number;
  /** Daily budget; Infinity when unlimited. */
  budget: number;
  remaining: number;
  blocked: boolean;
  resetsAt: Date;
}

export interface OutputImage {
  /** PNG bytes with the `parameters` text chunk. */
  png: Buffer;
  width: number;
  height: number;
  infotext: string;
}

export type Pass = 'base' | 'hires';

export type JobEvent =
  | { type: 'queued'; jobId: string; position: number }
  | { type: 'position'; jobId: string; position: number }
  | { type: 'started'; jobId: string }
  | { type: 'progress'; jobId: string; pass: Pass; step: number; total: number; preview?: Buffer }
  | {
      type: 'done';
      jobId: string;
      images: { base?: OutputImage; upscaled: (OutputImage & { denoise: number })[] };
      usage: Usage;
      timings: { totalMs: number };
    }
  | { type: 'failed'; jobId: string; reason: string; error: { code: string; message: string } }
  | { type: 'cancelled'; jobId: string };

export type FinalEvent = Extract<JobEvent, { type: 'done' | 'failed' | 'cancelled' }>;

/** One submitted job: its price, where it stands, and its events (this job's only). */
export interface JobHandle {
  jobId: string;
  cost: number;
  usage: Usage;
  position: number;
  events: AsyncIterable<JobEvent>;
  result: Promise<FinalEvent>;
}

export interface SubmitInput {
  kind: JobKind;
  requester: Requester;
  request: GenerationRequest;
  /** One hires pass per value (a /compare has 2 to 4). */
  denoises: number[];
  /** For `upscale`: the finished job whose base latent to start from. */
  parentJobId?: string;
  /** The interaction to answer through, so a restarted bot can still use it while it is valid. */
  interaction: { token: string; expiresAt: Date };
}

/** A job as the buttons need it after any restart: everything is in the database. */
export interface JobInfo {
  jobId: string;
  kind: JobKind;
  guildId: string;
  channelId: string;
  userId: string;
  status: JobStatus;
  request: GenerationRequest;
  denoises: number[];
  cost: number;
  parentJobId: string | undefined;
  /** The messages that show the job's result (set with `recordMessages`). */
  resultMessageIds: string[];
}

export interface QueueView {
  /** The member's unfinished jobs, oldest first. */
  mine: { jobId: string; kind: JobKind; status: 'queued' | 'running'; position: number; prompt: string }[];
  /** Jobs waiting or running, all members together. */
  length: number;
  max: number;
}

export type QuotaTarget =
  | { scope: 'guild' }
  | { scope: 'role'; roleId: string }
  | { scope: 'user'; userId: string };

/** What /settings can change; `null` clears a server value back to the bot's. */
export interface GuildSettingsChange {
  defaults?: { [K in keyof StoredGuildSettings['defaults']]?: StoredGuildSettings['defaults'][K] | null };
  limits?: { [K in keyof StoredGuildSettings['limits']]?: number | null };
  addBlockedWords?: string[];
  removeBlockedWords?: string[];
}

/** A job taken over from a previous process: the front end follows it like a fresh one. */
export interface RecoveredJob {
  info: JobInfo;
  interaction: { token: string; expiresAt: Date } | undefined;
  handle: JobHandle;
}

export interface FrontEndServices {
  /** The loaded model, for infotexts and the "made with another model" note. */
  model(): ModelInfo;
  /** Bot-wide defaults and limits with the server's on top. */
  guildSettings(guildId: string): Promise<GuildSettings>;
  storedGuildSettings(guildId: string): Promise<StoredGuildSettings>;
  updateGuildSettings(guildId: string, change: GuildSettingsChange, by: string): Promise<StoredGuildSettings>;
  /** The price in quota units (pure; the same rule the job service charges by). */
  cost(kind: JobKind, request: GenerationRequest, hiresPasses: number): number;
  /** Reserves the cost and queues the job; throws a UserError (quota, queue full, blocked, …). */
  submit(input: SubmitInput): Promise<JobHandle>;
  /** Owner or admin; throws a UserError (not-found, not-allowed, already-finished). */
  cancel(jobId: string, by: { userId: string; isAdmin: boolean }): Promise<void>;
  job(jobId: string): Promise<JobInfo | undefined>;
  /** Remembers which messages show a job's result (for Delete, and for restarts). */
  recordMessages(jobId: string, messageIds: string[]): Promise<void>;
  usage(requester: Requester): Promise<Usage>;
  queue(requester: Requester): Promise<QueueView>;
  quota: {
    /** The server's daily budget per member (0 = unlimited) and whether the server set it. */
    guildDailyUnits(guildId: string): Promise<{ dailyUnits: number; setHere: boolean }>;
    /** `null` clears the override. */
    setDailyUnits(guildId: string, target: QuotaTarget, units: number | null, by: string): Promise<void>;
    resetUser(guildId: string, userId: string, by: string): Promise<void>;
    setBlocked(guildId: string, userId: string, blocked: boolean, by: string): Promise<void>;
  };
  /** Called for each job a restart took over; returns an unsubscribe function. */
  onRecovered(listener: (job: RecoveredJob) => void): () => void;
}
