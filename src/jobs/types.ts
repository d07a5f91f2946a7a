// The job service's plain-data boundary: what it takes, what it tells, what it needs.
import type { Db } from '../db/client.ts';
import type { JobRow } from '../db/schema.ts';
import type { GenerationResult, Latent, ProgressEvent, RenderedImage } from '../diffusion/pipeline.ts';
import type { GenerationRequest, RequestLimits } from '../diffusion/request.ts';
import type { EngineRunOptions, UpscaleResult } from '../engine/engine.ts';
import type { JobKind } from './cost.ts';
import type { Limiters } from './limiters.ts';
import type { QuotaSettings, Usage } from './quota.ts';

/** What the job service needs of the engine (the real Engine, or one in a test). */
export interface EngineLike {
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

export type FailureReason = 'error' | 'timeout' | 'restart-expired' | 'requeue-refused';

export type JobEvent =
  | { type: 'queued'; jobId: string; position: number; cost: number; usage: Usage }
  | { type: 'position'; jobId: string; position: number }
  | { type: 'started'; jobId: string }
  | { type: 'progress'; jobId: string; progress: ProgressEvent }
  | { type: 'done'; jobId: string; job: JobRow; images: JobImages; usage: Usage }
  | { type: 'failed'; jobId: string; job: JobRow; reason: FailureReason; message: string; refunded: boolean }
  | { type: 'cancelled'; jobId: string; job: JobRow; refunded: boolean }
  | { type: 'requeued'; jobId: string; job: JobRow; position: number };

export interface JobServiceLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface JobServiceOptions {
  db: Db;
  engine: EngineLike;
  limiters: Limiters;
  quota: QuotaSettings;
  perUser: number;
  gpuWorkers: number;
  jobTimeoutMs: number;
  /** How often this process says it is alive, and after how long a silent owner counts as dead. */
  heartbeatMs?: number;
  staleMs?: number;
  instanceId?: string;
  log?: JobServiceLog;
  /** Bounds every request must meet before it may reach the GPU. */
  limits?: RequestLimits;
}
