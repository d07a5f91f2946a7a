/**
 * What the Discord front end needs from the rest of the bot, as plain data. The job service
 * (src/jobs/) and the database implement it; the commands and the router see only this.
 * Operations a member can get wrong throw a `UserError` (code + plain-data context); the front
 * end turns that into words.
 */
import type { GenerationRequest } from '../diffusion/request.ts';
import type { JobKind } from '../jobs/cost.ts';
import type { Usage } from '../jobs/quota-standing.ts';
import type { FinalJobEvent, JobEvent, JobHandle } from '../jobs/types.ts';
import type { ModelInfo } from './build-request.ts';
import type { GuildSettings, StoredGuildSettings } from './settings.ts';

/** The job service's own types: what `submit` returns and what a job tells, as plain data. */
export type { FinalJobEvent, JobEvent, JobHandle, JobKind, Usage };

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

/** A job's events without its numbers: what `JobService.watch` gives for a job a restart took over. */
export type JobEvents = Pick<JobHandle, 'result' | typeof Symbol.asyncIterator>;

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

/** The GPU workers as a gateway sees them (src/jobs/worker-watch.ts). */
export interface WorkersView {
  /** Live workers at the last look; undefined before the first. */
  live(): number | undefined;
  /** Called when live workers go from some to none, or back; returns the unsubscribe. */
  onChange(listener: (online: boolean) => void): () => void;
}

export interface QueueView {
  /** The member's unfinished jobs, oldest first. */
  mine: { jobId: string; kind: JobKind; status: 'queued' | 'running'; position: number; prompt: string }[];
  /** Jobs waiting or running, all members together. */
  length: number;
  max: number;
  /** Live GPU workers, where they are other processes (a gateway) and known. */
  workersLive?: number;
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

/**
 * A job taken over from a previous process: the front end follows it like a fresh one. Also a
 * job recovery ended without running it (its only event is the failure), so its owner hears why.
 */
export interface RecoveredJob {
  info: JobInfo;
  interaction: { token: string; expiresAt: Date } | undefined;
  events: JobEvents;
}

/**
 * A job that was running and is back in the queue (its process stopped or died): its reply is
 * told once, through the stored token, until a worker takes the job again.
 */
export interface HandedBackJob {
  info: JobInfo;
  interaction: { token: string; expiresAt: Date } | undefined;
}

export interface FrontEndServices {
  /** The loaded model, for infotexts and the "made with another model" note. */
  model(): ModelInfo;
  /**
   * The GPU workers, where they are other processes (a gateway), so that a waiting job can say
   * when none is online; absent where this process runs the jobs itself.
   */
  workers?: WorkersView;
  /** Bot-wide defaults and limits with the server's on top. */
  guildSettings(guildId: string): Promise<GuildSettings>;
  storedGuildSettings(guildId: string): Promise<StoredGuildSettings>;
  updateGuildSettings(guildId: string, change: GuildSettingsChange, by: string): Promise<StoredGuildSettings>;
  /** The price in quota units (pure; the same rule the job service charges by). */
  cost(kind: JobKind, request: GenerationRequest, hiresPasses: number): number;
  /** Reserves the cost and queues the job (`JobService.submit`); throws a UserError (quota, queue full, …). */
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
  /**
   * False while the process running the job cannot be sure it still owns it (frozen past the
   * staleness bound): its progress must not be shown, another process may be answering.
   */
  mayReport(jobId: string): boolean;
  /** Called for each job a restart took over or failed; returns an unsubscribe function. */
  onRecovered(listener: (job: RecoveredJob) => void): () => void;
  /**
   * Called for each job this process puts back in the queue after it ran; the job service waits
   * (a few seconds at most) for the promise before another process may claim it.
   */
  onHandedBack(listener: (job: HandedBackJob) => Promise<void>): () => void;
}
