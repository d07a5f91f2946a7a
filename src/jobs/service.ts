/**
 * The job lifecycle between "a user asked" and "the engine ran": admission (per-user and queue
 * limits) → quota reservation + job row in one transaction → the fair queue → the GPU limiter →
 * done + commit, or failed/cancelled + refund. Jobs survive a crash: their rows carry the full
 * request, and a live process takes over the unfinished jobs of a dead one.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import Bottleneck from 'bottleneck';
import { inTransaction } from '../db/client.ts';
import type { JobRow } from '../db/schema.ts';
import type { Latent, ProgressEvent } from '../diffusion/pipeline.ts';
import { CLI_LIMITS, RequestError, validateRequest } from '../diffusion/request.ts';
import { UserError } from '../user-error.ts';
import { jobCost } from './cost.ts';
import { FairQueue } from './fair-queue.ts';
import {
  claimStale,
  finishJob,
  getJob,
  heartbeat,
  insertJob,
  loadLatent,
  markRunning,
  newJobId,
  saveLatent,
} from './job-store.ts';
import type { Slot } from './limiters.ts';
import { type QuotaScope, reserve, settle, type Usage, usage } from './quota.ts';
import type {
  FailureReason,
  JobEvent,
  JobImages,
  JobServiceLog,
  JobServiceOptions,
  JobSubmission,
} from './types.ts';

export type * from './types.ts';

interface Waiting {
  id: string;
  userId: string;
  row: JobRow;
  slots: Slot[];
}

const QUIET_LOG: JobServiceLog = { info: () => {}, error: () => {} };

export class JobService {
  readonly instanceId: string;
  private readonly queue = new FairQueue<Waiting>();
  private readonly running = new Map<string, { controller: AbortController; cancelRequested: boolean }>();
  private readonly positions = new Map<string, number>();
  private readonly listeners = new Set<(event: JobEvent) => void>();
  private readonly log: JobServiceLog;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(private readonly o: JobServiceOptions) {
    this.instanceId = o.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = o.log ?? QUIET_LOG;
  }

  /** Subscribes to job events; returns the unsubscribe function. */
  on(listener: (event: JobEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: JobEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.log.error({ err, jobId: event.jobId }, 'job event listener failed');
      }
    }
  }

  /** Recovers jobs left by dead processes, then keeps heartbeating and watching for more. */
  async start(): Promise<void> {
    await this.recover();
    const beat = setInterval(() => {
      heartbeat(this.o.db, this.instanceId).catch((err) => this.log.error({ err }, 'heartbeat failed'));
    }, this.o.heartbeatMs ?? 5_000);
    const sweep = setInterval(() => {
      this.recover().catch((err) => this.log.error({ err }, 'recovery failed'));
    }, this.o.staleMs ?? 30_000);
    beat.unref();
    sweep.unref();
    this.timers = [beat, sweep];
  }

  /**
   * Stops taking and starting jobs and interrupts running ones. Unfinished jobs stay in the
   * database as they are, owned by this (soon silent) process, so the next start or another
   * process takes them over: a restart never cancels or loses a job.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const { controller } of this.running.values()) controller.abort();
    for (let it = this.queue.shift(); it; it = this.queue.shift()) for (const s of it.slots) s.release();
    const deadline = Date.now() + 10_000;
    while (this.running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  }

  private scopeOf(row: Pick<JobRow, 'guildId' | 'userId'>): QuotaScope {
    return { guildId: row.guildId, userId: row.userId };
  }

  /** Admits, charges and queues a job, or throws a UserError; nothing is charged on refusal. */
  async submit(
    input: JobSubmission,
  ): Promise<{ jobId: string; cost: number; position: number; usage: Usage }> {
    if (this.stopped) throw new UserError('queue-full', 'The bot is shutting down; try again in a minute.');
    const denoises = input.denoises ?? [input.request.denoise];
    try {
      for (const denoise of denoises)
        validateRequest({ ...input.request, denoise }, this.o.limits ?? CLI_LIMITS);
    } catch (err) {
      if (err instanceof RequestError) throw new UserError('bad-option', err.message, { option: err.option });
      throw err;
    }
    if (input.kind === 'upscale') await this.checkParent(input);
    const cost = jobCost(input.kind, input.request, denoises.length);
    const slots = await this.admit(input.guildId, input.userId);
    const jobId = newJobId();
    const scope = { guildId: input.guildId, userId: input.userId, roleIds: input.roleIds ?? [] };
    let row: JobRow;
    let charged: Usage;
    try {
      [row, charged] = await inTransaction(this.o.db, async (t) => {
        const u = await reserve(t, scope, { jobId, cost }, this.o.quota);
        const inserted = await insertJob(t, {
          id: jobId,
          kind: input.kind,
          guildId: input.guildId,
          channelId: input.channelId,
          userId: input.userId,
          request: input.request,
          denoises,
          seed: input.request.seed,
          parentJobId: input.parentJobId ?? null,
          cost,
          status: 'queued',
          owner: this.instanceId,
          heartbeatAt: new Date(),
          interactionToken: input.interaction?.token ?? null,
          interactionExpiresAt: input.interaction?.expiresAt ?? null,
        });
        return [inserted, u] as const;
      });
    } catch (err) {
      for (const s of slots) s.release();
      throw err;
    }
    const position = this.enqueue({ id: jobId, userId: input.userId, row, slots });
    this.emit({ type: 'queued', jobId, position, cost, usage: charged });
    this.afterQueueChange();
    return { jobId, cost, position, usage: charged };
  }

  /** Adds a job to the fair queue; returns its position (1 = next). */
  private enqueue(w: Waiting): number {
    this.queue.push(w);
    const position = this.queue.order().findIndex((q) => q.id === w.id) + 1;
    this.positions.set(w.id, position);
    return position;
  }

  private async checkParent(input: JobSubmission): Promise<void> {
    const parent = input.parentJobId ? await getJob(this.o.db, input.parentJobId) : undefined;
    if (
      !parent ||
      parent.guildId !== input.guildId ||
      parent.kind !== 'imagine' ||
      parent.status !== 'done'
    ) {
      throw new UserError('not-found', 'That image is no longer available to upscale.');
    }
  }

  private async admit(guildId: string, userId: string): Promise<Slot[]> {
    const user = await this.o.limiters.users.tryAcquire(`${guildId}:${userId}`);
    if (!user) {
      throw new UserError(
        'user-limit',
        `You already have ${this.o.perUser} job${this.o.perUser === 1 ? '' : 's'} queued or running; wait for one to finish or cancel it.`,
      );
    }
    const queue = await this.o.limiters.queue.tryAcquire('all');
    if (!queue) {
      user.release();
      const n = await this.o.limiters.queue.held('all');
      throw new UserError(
        'queue-full',
        `The queue is full (${n} jobs waiting or running). Try again in a few minutes.`,
        { n },
      );
    }
    return [user, queue];
  }

  /** Cancels a queued or running job: its owner or an admin. */
  async cancel(jobId: string, by: { userId: string; isAdmin: boolean }): Promise<void> {
    const job = await getJob(this.o.db, jobId);
    if (!job) throw new UserError('not-found', 'No such job.');
    if (job.userId !== by.userId && !by.isAdmin)
      throw new UserError('not-allowed', 'Only its owner or an admin can cancel this job.');
    if (job.status !== 'queued' && job.status !== 'running') {
      throw new UserError(
        'already-finished',
        `That job has already ${job.status === 'done' ? 'finished' : job.status}.`,
      );
    }
    const running = this.running.get(jobId);
    if (running) {
      running.cancelRequested = true;
      running.controller.abort();
      return;
    }
    const waiting = this.queue.remove(jobId);
    this.positions.delete(jobId);
    if (!waiting && job.owner !== this.instanceId && job.status === 'running') {
      throw new UserError(
        'not-allowed',
        'That job is running on another bot process and can only be stopped there.',
      );
    }
    await this.end(
      waiting ?? { id: jobId, userId: job.userId, row: job, slots: [] },
      'cancelled',
      {},
      job.owner ?? this.instanceId,
    );
    this.afterQueueChange();
  }

  /** Starts what the GPU has room for, then tells waiting jobs whose position moved. */
  private afterQueueChange(): void {
    this.dispatch();
    this.queue.order().forEach((w, i) => {
      if (this.positions.get(w.id) !== i + 1) {
        this.positions.set(w.id, i + 1);
        this.emit({ type: 'position', jobId: w.id, position: i + 1 });
      }
    });
  }

  private dispatch(): void {
    while (!this.stopped && this.running.size < this.o.gpuWorkers && this.queue.size > 0) {
      const next = this.queue.shift() as Waiting;
      this.positions.delete(next.id);
      const controller = new AbortController();
      this.running.set(next.id, { controller, cancelRequested: false });
      void this.run(next, controller);
    }
  }

  private async run(w: Waiting, controller: AbortController): Promise<void> {
    try {
      if (!(await markRunning(this.o.db, w.id, this.instanceId))) {
        // cancelled (or taken over) while it waited: it was settled by whoever did that
        for (const s of w.slots) s.release();
        return;
      }
      this.emit({ type: 'started', jobId: w.id });
      let images: JobImages & { latent?: Latent };
      try {
        images = await this.o.limiters.gpu.schedule({ id: w.id, expiration: this.o.jobTimeoutMs }, () =>
          this.execute(w.row, controller.signal),
        );
      } catch (error) {
        const cancelRequested = this.running.get(w.id)?.cancelRequested ?? false;
        if (this.stopped && !cancelRequested) {
          // interrupted by a stop: left as it is in the database for whoever starts next
          for (const s of w.slots) s.release();
        } else if (isExpiration(error)) {
          controller.abort(); // the engine stops between steps; the slot is already free
          await this.end(w, 'failed', {
            reason: 'timeout',
            message: `timed out after ${Math.round(this.o.jobTimeoutMs / 1000)} s`,
          });
        } else if (cancelRequested) {
          await this.end(w, 'cancelled', {});
        } else {
          const message = error instanceof Error ? error.message : String(error);
          this.log.error({ jobId: w.id, err: error }, 'job failed');
          await this.end(w, 'failed', { reason: 'error', message });
        }
        return;
      }
      await this.end(w, 'done', { images });
    } catch (err) {
      this.log.error({ jobId: w.id, err }, 'job bookkeeping failed');
    } finally {
      this.running.delete(w.id);
      this.afterQueueChange();
    }
  }

  private async execute(row: JobRow, signal: AbortSignal): Promise<JobImages & { latent?: Latent }> {
    const onProgress = (progress: ProgressEvent) => this.emit({ type: 'progress', jobId: row.id, progress });
    const options = { signal, onProgress, denoises: row.denoises };
    if (row.kind === 'imagine') {
      const result = await this.o.engine.generate(row.request, options);
      const { latent, ...base } = result.base;
      return { base, upscaled: result.upscaled, latent };
    }
    const latent = row.parentJobId ? await loadLatent(this.o.db, row.parentJobId) : undefined;
    if (!latent) throw new Error(`base latent of job ${row.parentJobId} is missing`);
    const result = await this.o.engine.upscale(row.request, latent, options);
    return { upscaled: result.upscaled };
  }

  /** Final bookkeeping: status, then commit or refund, then the event; slots released last. */
  private async end(
    w: Waiting,
    status: 'done' | 'failed' | 'cancelled',
    detail: { images?: JobImages & { latent?: Latent }; reason?: FailureReason; message?: string },
    owner = this.instanceId,
  ): Promise<void> {
    const { db } = this.o;
    const scope = this.scopeOf(w.row);
    try {
      // latent, status and ledger in one transaction: a crash cannot leave an ended job unsettled
      const settled = await inTransaction(db, async (t) => {
        if (!(await finishJob(t, w.id, owner, status, detail.message ? { error: detail.message } : {}))) {
          return undefined; // someone else ended it and settled it
        }
        if (status === 'done' && detail.images?.latent) await saveLatent(t, w.id, detail.images.latent);
        // quota: only a job that produced images is charged
        return settle(t, scope, w.id, status === 'done' ? 'commit' : 'refund');
      });
      if (settled === undefined) return;
      const job = (await getJob(db, w.id)) as JobRow;
      if (status === 'done') {
        const { latent: _latent, ...images } = detail.images as JobImages & { latent?: Latent };
        this.emit({ type: 'done', jobId: w.id, job, images, usage: await usage(db, scope, this.o.quota) });
      } else if (status === 'cancelled') {
        this.emit({ type: 'cancelled', jobId: w.id, job, refunded: settled });
      } else {
        this.emit({
          type: 'failed',
          jobId: w.id,
          job,
          reason: detail.reason ?? 'error',
          message: detail.message ?? 'failed',
          refunded: settled,
        });
      }
    } finally {
      for (const s of w.slots) s.release();
    }
  }

  /**
   * Takes over unfinished jobs of dead processes: re-queued while their Discord interaction is
   * still valid (so the answer can still reach the user), otherwise failed and refunded.
   */
  async recover(now = new Date()): Promise<void> {
    const staleBefore = new Date(now.getTime() - (this.o.staleMs ?? 30_000));
    const rows = await claimStale(this.o.db, this.instanceId, staleBefore);
    for (const row of rows) {
      const w: Waiting = { id: row.id, userId: row.userId, row, slots: [] };
      const valid = row.interactionExpiresAt !== null && row.interactionExpiresAt.getTime() > now.getTime();
      if (!valid) {
        this.log.info(
          { jobId: w.id },
          'a job interrupted by a restart can no longer be answered: failed and refunded',
        );
        await this.end(w, 'failed', {
          reason: 'restart-expired',
          message: 'interrupted by a restart, and its Discord interaction expired before it could run again',
        });
        continue;
      }
      try {
        w.slots = await this.admit(row.guildId, row.userId);
      } catch (err) {
        await this.end(w, 'failed', {
          reason: 'requeue-refused',
          message: `interrupted by a restart and could not be queued again: ${(err as Error).message}`,
        });
        continue;
      }
      const position = this.enqueue(w);
      this.log.info({ jobId: w.id }, 're-queued a job left by a stopped process');
      this.emit({ type: 'requeued', jobId: w.id, job: row, position });
    }
    if (rows.length > 0) this.afterQueueChange();
  }
}

/** Bottleneck rejects a job that outlives its `expiration` with this message (it has no code). */
function isExpiration(error: unknown): boolean {
  return error instanceof Bottleneck.BottleneckError && /timed out/.test(error.message);
}
