// The job service's plain-data boundary: what it takes, what it tells, what it needs.
import type { Db } from '../db/client.ts';
import type { Upkeep } from '../db/pglite-upkeep.ts';
import type { JobRow } from '../db/schema.ts';
import type { GenerationResult, Latent, ProgressEvent, RenderedImage } from '../diffusion/pipeline.ts';
import type { GenerationRequest, RequestLimits } from '../diffusion/request.ts';
import type { EngineRunOptions, UpscaleResult } from '../engine/engine.ts';
import type { JobKind } from './cost.ts';
import type { Limiters } from './limiters.ts';
import type { QuotaSettings, Usage } from './quota-standing.ts';

/** What the job service needs of the engine (the real EnginePool, or one in a test). */
export interface EngineLike {
  /** Jobs it can run at once (one per engine); the service never gives it more. */
  readonly size?: number;
  generate(request: GenerationRequest, options: EngineRunOptions): Promise<GenerationResult>;
  upscale(request: GenerationRequest, latent: Latent, options: EngineRunOptions): Promise<UpscaleResult>;
}

export interface JobSubmission {
  kind: JobKind;
  guildId: string;
  channelId: string;
  userId: string;
  roleIds?: readonly string[];
  request: GenerationRequest;
  /** Hires passes to run; defaults to the request's denoise. */
  denoises?: number[];
  /** For `upscale`: the finished job whose base latent to start from. */
  parentJobId?: string;
  /** The Discord interaction, so a restarted bot can still answer while it is valid. */
  interaction?: { token: string; expiresAt: Date };
}

export interface JobImages {
  base?: RenderedImage;
  upscaled: (RenderedImage & { denoise: number })[];
}

/** Where the time went, in ms; kept on the job row and in its log line. */
export interface JobTimings {
  queuedMs: number;
  baseMs?: number;
  hiresMs: number[];
  decodeMs: number;
  totalMs: number;
}

export type FailureReason =
  | 'error'
  /** The engine refused the request (e.g. a prompt past the chunk cap); the message names the option. */
  | 'bad-option'
  | 'timeout'
  /** The engine worker died under the job (it is restarted; the job is not retried). */
  | 'engine-crashed'
  /** Started twice already, each time followed by a dead process: not tried a third time. */
  | 'too-many-attempts'
  /** Done, but its process died before delivering it, each of the times it was drawn: refunded. */
  | 'undelivered'
  | 'restart-expired'
  | 'requeue-refused';

export type JobEvent =
  | { type: 'queued'; jobId: string; position: number; queueLength: number; cost: number; usage: Usage }
  | { type: 'requeued'; jobId: string; job: JobRow; position: number; queueLength: number }
  | { type: 'position'; jobId: string; position: number; queueLength: number }
  | { type: 'started'; jobId: string; attempt: number }
  | { type: 'progress'; jobId: string; progress: ProgressEvent }
  | { type: 'done'; jobId: string; job: JobRow; images: JobImages; usage: Usage; timings: JobTimings }
  | { type: 'failed'; jobId: string; job: JobRow; reason: FailureReason; message: string; refunded: boolean }
  | { type: 'cancelled'; jobId: string; job: JobRow; refunded: boolean }
  /**
   * This process let the job go unfinished: it stopped (the job stays for the next start), or
   * another process took it from the shared queue and answers it from there.
   */
  | { type: 'interrupted'; jobId: string };

export type FinalJobEvent = Extract<JobEvent, { type: 'done' | 'failed' | 'cancelled' | 'interrupted' }>;

/** What `submit` gives back: the job's numbers at once, then its own events and outcome. */
export interface JobHandle extends AsyncIterable<JobEvent> {
  readonly jobId: string;
  readonly cost: number;
  /** The user's usage right after this job's reservation. */
  readonly usage: Usage;
  /** Position in the queue when it was queued (1 = next). */
  readonly position: number;
  /** Every event of this job so far (the latest progress only), then each new one. */
  subscribe(listener: (event: JobEvent) => void): () => void;
  /** The final event; never rejects. */
  readonly result: Promise<FinalJobEvent>;
}

export interface JobServiceLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RetentionSettings {
  /** Base latents (for re-upscaling) older than this are deleted. */
  latentDays: number;
  /** How often the sweep runs. */
  sweepMs?: number;
  /**
   * PGlite's upkeep (see Database.maintenance): after each timed sweep, and once in the
   * background at start instead of after the start's sweep.
   */
  maintenance?: (o?: { all?: boolean }) => Promise<Upkeep>;
}

export interface JobServiceOptions {
  db: Db;
  /** Absent in a process that never runs a job (a gateway). */
  engine?: EngineLike;
  limiters: Limiters;
  quota: QuotaSettings;
  /** Jobs run at once; defaults to the engine's size; 0: this process never runs a job (a gateway). */
  concurrency?: number;
  /** LISTEN for the queue's notifications (Database.listen); without it the poll alone. */
  listen?: (channel: string, onPayload: (payload: string) => void) => Promise<() => Promise<void>>;
  /** How often the shared queue is checked besides the notifications (default 1 s). */
  pollMs?: number;
  jobTimeoutMs: number;
  /** How often this process says it is alive, and after how long a silent owner counts as dead. */
  heartbeatMs?: number;
  staleMs?: number;
  /** How long a job's bookkeeping is retried through a database outage before it is let go. */
  dbRetryMs?: number;
  /**
   * How long a user's request (submit, cancel) waits for the database before it is refused as
   * unavailable (default 10 s): a hung database must not hold the user's admission slot.
   */
  dbAnswerMs?: number;
  /** A job started this many times (each ended by a dead process) is failed, not started again. */
  maxAttempts?: number;
  /** Recovery re-queues an unfinished job created less than this long ago; older ones fail. */
  requeueWithinMs?: number;
  /**
   * A front end records each done job's delivery (recordDelivery, then JobService.delivered):
   * until then this process holds the job (heartbeats it), and recovery draws again a done job
   * whose owner died before delivering it. Off, done jobs are not followed past their end.
   */
  redrawUndelivered?: boolean;
  /** Of those, the ones that finished less than this long ago (default 24 h); older ones are left be. */
  redrawWithinMs?: number;
  retention?: RetentionSettings;
  instanceId?: string;
  log?: JobServiceLog;
  /** Bounds every request must meet before it may reach the GPU. */
  limits?: RequestLimits;
}
