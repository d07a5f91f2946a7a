/**
 * An in-memory FrontEndServices for the Discord tests of phase 1, until the real job service is
 * wired behind the interface: each submitted job's events go through the job service's own
 * JobChannel, and the test drives them (started, progress, done, failed, cancelled). Quotas are a plain per-member tally with the same refusals the real service
 * raises (UserError code + context), so "refused costs nothing" and "charged to the presser" are
 * checked on what the front end asked for, not on how the real ledger stores it.
 */
import sharp from 'sharp';
import { loadConfig } from '../../src/config.ts';
import type { JobRow } from '../../src/db/schema.ts';
import type { ProgressEvent } from '../../src/diffusion/pipeline.ts';
import { type GenerationRequest, hiresSize } from '../../src/diffusion/request.ts';
import type {
  FrontEndServices,
  GuildSettingsChange,
  HandedBackJob,
  JobHandle,
  JobInfo,
  JobKind,
  QueueView,
  QuotaTarget,
  RecoveredJob,
  Requester,
  SubmitInput,
  Usage,
} from '../../src/discord/services.ts';
import {
  EMPTY_GUILD_SETTINGS,
  effectiveSettings,
  type GuildSettings,
  type StoredGuildSettings,
} from '../../src/discord/settings.ts';
import { jobCost } from '../../src/jobs/cost.ts';
import { JobChannel } from '../../src/jobs/job-channel.ts';
import type { FailureReason } from '../../src/jobs/types.ts';
import { UserError } from '../../src/user-error.ts';

export async function testPng(width: number, height: number, shade = 128): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: shade, g: 64, b: 200 } } })
    .png()
    .toBuffer();
}

export class ScriptedJob {
  /** The job service's own per-job event stream. */
  readonly channel = new JobChannel();

  constructor(
    readonly info: JobInfo,
    readonly input: SubmitInput,
    private readonly services: ScriptedServices,
  ) {}

  get jobId(): string {
    return this.info.jobId;
  }

  get handleEvents() {
    return {
      result: this.channel.result,
      [Symbol.asyncIterator]: () => this.channel[Symbol.asyncIterator](),
    };
  }

  start(): void {
    this.info.status = 'running';
    this.channel.push({ type: 'started', jobId: this.jobId, attempt: 1 });
  }

  progress(progress: ProgressEvent): void {
    this.channel.push({ type: 'progress', jobId: this.jobId, progress });
  }

  /** Ends the job with images of the request's real sizes (tiny solid PNGs). */
  async finish(o: { totalMs?: number } = {}): Promise<void> {
    const r = this.info.request;
    const target = hiresSize(r);
    const base =
      this.info.kind === 'imagine'
        ? { png: await testPng(r.width, r.height, 40), width: r.width, height: r.height, infotext: 'base' }
        : undefined;
    const upscaled = await Promise.all(
      this.info.denoises.map(async (denoise, i) => ({
        png: await testPng(target.width, target.height, 100 + i * 40),
        width: target.width,
        height: target.height,
        infotext: `hires ${denoise}`,
        denoise,
      })),
    );
    this.info.status = 'done';
    this.channel.push({
      type: 'done',
      jobId: this.jobId,
      job: this.row(),
      images: { ...(base ? { base } : {}), upscaled },
      usage: this.services.usageOf(this.input.requester),
      timings: { queuedMs: 5, hiresMs: [], decodeMs: 1, totalMs: o.totalMs ?? 12_345 },
    });
  }

  fail(reason: FailureReason = 'error', message = 'engine crashed'): void {
    this.info.status = 'failed';
    this.services.refund(this);
    this.channel.push({
      type: 'failed',
      jobId: this.jobId,
      job: this.row(),
      reason,
      message,
      refunded: true,
    });
  }

  cancel(): void {
    this.info.status = 'cancelled';
    this.services.refund(this);
    this.channel.push({ type: 'cancelled', jobId: this.jobId, job: this.row(), refunded: true });
  }

  /** The job row the real service would attach (only the fields the front end could read). */
  private row(): JobRow {
    return {
      id: this.jobId,
      kind: this.info.kind,
      guildId: this.info.guildId,
      channelId: this.info.channelId,
      userId: this.info.userId,
      request: this.info.request,
      denoises: this.info.denoises,
      seed: this.info.request.seed,
      cost: this.info.cost,
      status: this.info.status,
    } as JobRow;
  }
}

let counter = 0;

export class ScriptedServices implements FrontEndServices {
  readonly config = loadConfig({});
  readonly submissions: SubmitInput[] = [];
  readonly jobs = new Map<string, ScriptedJob>();
  readonly stored = new Map<string, StoredGuildSettings>();
  readonly recorded = new Map<string, string[]>();
  readonly cancels: { jobId: string; by: { userId: string; isAdmin: boolean } }[] = [];
  readonly quotaCalls: unknown[][] = [];
  /** Units charged per `guild:user`. */
  readonly charged = new Map<string, number>();
  budget = 50;
  blocked = new Set<string>();
  /** Makes the next `submit` wait this long (to push the bot past its acknowledgement budget). */
  submitDelayMs = 0;
  /** Makes `job()` throw a plain Error (an internal failure). */
  brokenLookup = false;
  private waiters: ((job: ScriptedJob) => void)[] = [];
  private recoveredListeners = new Set<(job: RecoveredJob) => void>();
  private handedBackListeners = new Set<(job: HandedBackJob) => Promise<void>>();

  model() {
    return { name: 'tiny-sd', hash: '6ce0161689' };
  }

  async guildSettings(guildId: string): Promise<GuildSettings> {
    return effectiveSettings(this.config, this.stored.get(guildId) ?? EMPTY_GUILD_SETTINGS);
  }

  async storedGuildSettings(guildId: string): Promise<StoredGuildSettings> {
    return this.stored.get(guildId) ?? EMPTY_GUILD_SETTINGS;
  }

  async updateGuildSettings(guildId: string, change: GuildSettingsChange): Promise<StoredGuildSettings> {
    const current = this.stored.get(guildId) ?? EMPTY_GUILD_SETTINGS;
    const strip = <T extends object>(o: T) =>
      Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as never;
    const next: StoredGuildSettings = {
      defaults: strip({ ...current.defaults, ...change.defaults }),
      limits: strip({ ...current.limits, ...change.limits }),
      blockedWords: [...new Set([...current.blockedWords, ...(change.addBlockedWords ?? [])])].filter(
        (w) => !change.removeBlockedWords?.includes(w),
      ),
    };
    this.stored.set(guildId, next);
    return next;
  }

  cost(kind: JobKind, request: GenerationRequest, passes: number): number {
    return jobCost(kind, request, passes);
  }

  usageOf(r: Pick<Requester, 'guildId' | 'userId'>): Usage {
    const used = this.charged.get(`${r.guildId}:${r.userId}`) ?? 0;
    return {
      used,
      budget: this.budget,
      remaining: Math.max(0, this.budget - used),
      blocked: this.blocked.has(r.userId),
      resetsAt: new Date('2030-01-02T00:00:00Z'),
    };
  }

  refund(job: ScriptedJob): void {
    const key = `${job.info.guildId}:${job.info.userId}`;
    this.charged.set(key, (this.charged.get(key) ?? 0) - job.info.cost);
  }

  async submit(input: SubmitInput): Promise<JobHandle> {
    if (this.submitDelayMs) await new Promise((r) => setTimeout(r, this.submitDelayMs));
    const cost = jobCost(input.kind, input.request, input.denoises.length);
    const usage = this.usageOf(input.requester);
    if (usage.blocked)
      throw new UserError('blocked', 'You are blocked from generating images in this server.', {});
    if (usage.used + cost > usage.budget) {
      throw new UserError('quota-exhausted', 'not enough quota', { cost, ...usage });
    }
    if (input.parentJobId && this.jobs.get(input.parentJobId)?.info.status !== 'done') {
      throw new UserError('not-found', 'That image is no longer available to upscale.', { what: 'image' });
    }
    this.submissions.push(input);
    const key = `${input.requester.guildId}:${input.requester.userId}`;
    this.charged.set(key, (this.charged.get(key) ?? 0) + cost);
    const jobId = `job${(++counter).toString(36).padStart(4, '0')}`;
    const info: JobInfo = {
      jobId,
      kind: input.kind,
      guildId: input.requester.guildId,
      channelId: input.requester.channelId,
      userId: input.requester.userId,
      status: 'queued',
      request: input.request,
      denoises: input.denoises,
      cost,
      parentJobId: input.parentJobId,
      resultMessageIds: [],
    };
    const job = new ScriptedJob(info, input, this);
    this.jobs.set(jobId, job);
    this.order.push(job);
    const waiter = this.waiters.shift();
    if (waiter) waiter(this.order[this.taken++] as ScriptedJob);
    job.channel.push({
      type: 'queued',
      jobId,
      position: 1,
      queueLength: 1,
      cost,
      usage: this.usageOf(input.requester),
    });
    return {
      jobId,
      cost,
      usage: this.usageOf(input.requester),
      position: 1,
      subscribe: (listener) => job.channel.subscribe(listener),
      result: job.channel.result,
      [Symbol.asyncIterator]: () => job.channel[Symbol.asyncIterator](),
    };
  }

  /** The next job submitted that the test has not taken yet (waiting for it if need be). */
  nextJob(): Promise<ScriptedJob> {
    const ready = this.order[this.taken];
    if (ready) {
      this.taken++;
      return Promise.resolve(ready);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  private readonly order: ScriptedJob[] = [];
  private taken = 0;

  async cancel(jobId: string, by: { userId: string; isAdmin: boolean }): Promise<void> {
    const job = this.jobs.get(jobId);
    if (!job) throw new UserError('not-found', 'No such job.', { what: 'job' });
    if (job.info.userId !== by.userId && !by.isAdmin) {
      throw new UserError('not-allowed', 'Only its owner or an admin can cancel this job.', {
        action: 'cancel',
        reason: 'not-owner',
      });
    }
    if (job.info.status !== 'queued' && job.info.status !== 'running') {
      throw new UserError('already-finished', 'That job has already finished.', { status: 'done' });
    }
    this.cancels.push({ jobId, by });
    job.cancel();
  }

  async job(jobId: string): Promise<JobInfo | undefined> {
    if (this.brokenLookup) throw new Error('database connection lost');
    return this.jobs.get(jobId)?.info;
  }

  async recordMessages(jobId: string, messageIds: string[]): Promise<void> {
    this.recorded.set(jobId, messageIds);
    const job = this.jobs.get(jobId);
    if (job) job.info.resultMessageIds = messageIds;
  }

  async usage(requester: Requester): Promise<Usage> {
    return this.usageOf(requester);
  }

  async queue(requester: Requester): Promise<QueueView> {
    const unfinished = [...this.jobs.values()].filter(
      (j) => j.info.status === 'queued' || j.info.status === 'running',
    );
    return {
      mine: unfinished
        .filter((j) => j.info.userId === requester.userId)
        .map((j, i) => ({
          jobId: j.jobId,
          kind: j.info.kind,
          status: j.info.status as 'queued' | 'running',
          position: i + 1,
          prompt: j.info.request.prompt,
        })),
      length: unfinished.length,
      max: this.config.queue.max,
    };
  }

  quota = {
    guildDailyUnits: async (guildId: string) => {
      this.quotaCalls.push(['guildDailyUnits', guildId]);
      return { dailyUnits: this.budget, setHere: false };
    },
    setDailyUnits: async (guildId: string, target: QuotaTarget, units: number | null, by: string) => {
      this.quotaCalls.push(['setDailyUnits', guildId, target, units, by]);
    },
    resetUser: async (guildId: string, userId: string, by: string) => {
      this.quotaCalls.push(['resetUser', guildId, userId, by]);
    },
    setBlocked: async (guildId: string, userId: string, blocked: boolean, by: string) => {
      this.quotaCalls.push(['setBlocked', guildId, userId, blocked, by]);
    },
  };

  mayReport(): boolean {
    return true;
  }

  onRecovered(listener: (job: RecoveredJob) => void): () => void {
    this.recoveredListeners.add(listener);
    return () => this.recoveredListeners.delete(listener);
  }

  /** Nothing here puts a job back in the queue after it ran (the real job service does). */
  onHandedBack(listener: (job: HandedBackJob) => Promise<void>): () => void {
    this.handedBackListeners.add(listener);
    return () => this.handedBackListeners.delete(listener);
  }

  /**
   * As the job service would after a restart: the job gets a fresh event stream (the old
   * process's follower is gone) and is handed to the front end with its stored token.
   */
  recover(job: ScriptedJob): ScriptedJob {
    const fresh = new ScriptedJob(job.info, job.input, this);
    this.jobs.set(job.jobId, fresh);
    for (const l of this.recoveredListeners) {
      l({ info: job.info, interaction: job.input.interaction, events: fresh.handleEvents });
    }
    return fresh;
  }
}
