/**
 * The job lifecycle between "a user asked" and "the engine ran": admission (per-user and queue
 * limits) → quota reservation + job row in one transaction → the fair queue → dispatch (the one
 * gate on how many jobs run: one per engine) → done + commit, or failed/cancelled + refund.
 * `submit` returns a handle with the job's own events. Jobs survive a crash: their rows carry the
 * full request, and a live process takes over the unfinished jobs of a dead one (recovery.ts).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { inTransaction } from '../db/client.ts';
import type { JobRow } from '../db/schema.ts';
import { CLI_LIMITS, RequestError, validateRequest } from '../diffusion/request.ts';
import { UserError } from '../user-error.ts';
import { admitJob } from './admission.ts';
import { jobCost } from './cost.ts';
import { answered, databaseUnavailable, NoAnswerError } from './db-deadline.ts';
import { type Outcome, runOnEngine } from './engine-run.ts';
import { FairQueue } from './fair-queue.ts';
import { JobChannel } from './job-channel.ts';
import { getJob, hasLatent, insertJob, markRunning, newJobId, releaseJobs } from './job-store.ts';
import type { Slot } from './limiters.ts';
import { reserve, settlementOf, usage } from './quota.ts';
import { type Recovery, startRecovery } from './recovery.ts';
import { retrying } from './retry.ts';
import { writeOutcome } from './settlement.ts';
import type {
  JobEvent,
  JobHandle,
  JobServiceLog,
  JobServiceOptions,
  JobSubmission,
  QueueEntry,
} from './types.ts';

export type * from './types.ts';

/** A job this process holds: waiting in the queue, running, or being settled. */
export interface Held {
  id: string;
  userId: string;
  row: JobRow;
  slots: Slot[];
  channel: JobChannel;
}

interface Running {
  held: Held;
  cancel: AbortController;
  cancelRequested: boolean;
}

const QUIET_LOG: JobServiceLog = { info: () => {}, warn: () => {}, error: () => {} };

export class JobService {
  readonly instanceId: string;
  private readonly queue = new FairQueue<Held>();
  private readonly running = new Map<string, Running>();
  /** Jobs whose outcome is known but not yet written (the database may be blinking). */
  private readonly settling = new Map<string, Held>();
  private readonly positions = new Map<string, number>();
  private readonly listeners = new Set<(event: JobEvent) => void>();
  private readonly log: JobServiceLog;
  private readonly concurrency: number;
  private recovery: Recovery | undefined;
  /** Jobs a stop interrupted, to hand back when it is done. */
  private readonly letGo: string[] = [];
  private stopped = false;

  constructor(private readonly o: JobServiceOptions) {
    this.instanceId = o.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = o.log ?? QUIET_LOG;
    this.concurrency = o.concurrency ?? o.engine.size ?? 1;
  }

  /** Subscribes to every job's events (recovered jobs included); returns the unsubscribe. */
  on(listener: (event: JobEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: JobEvent, channel?: JobChannel): void {
    (channel ?? this.heldJob(event.jobId)?.channel)?.push(event);
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.log.error({ err, jobId: event.jobId }, 'job event listener failed');
      }
    }
  }

  private heldJob(id: string): Held | undefined {
    return this.running.get(id)?.held ?? this.settling.get(id) ?? this.queue.find(id);
  }

  /** Ids of every job this process holds: the ones it heartbeats and recovery leaves alone. */
  heldIds(): string[] {
    return [...this.queue.order().map((h) => h.id), ...this.running.keys(), ...this.settling.keys()];
  }

  /** Recovers jobs left by dead processes, then keeps heartbeating, recovering and sweeping. */
  async start(): Promise<void> {
    this.recovery = await startRecovery(this.o, this.log, {
      instanceId: this.instanceId,
      held: () => this.heldIds(),
      adopt: (row) => this.adopt(row),
      fail: (row, reason, message) => this.endUnheld(row, { status: 'failed', reason, message }),
    });
  }

  /** One recovery pass now, as the timer runs it. */
  recover(): Promise<void> {
    if (!this.recovery) throw new Error('recover() before start()');
    return this.recovery.recover();
  }

  /** One retention sweep now, as the timer runs it. */
  sweep(now?: Date): Promise<void> {
    if (!this.recovery) throw new Error('sweep() before start()');
    return this.recovery.sweep(now);
  }

  /**
   * Stops taking and starting jobs and interrupts running ones. Unfinished jobs stay in the
   * database, handed back (queued, no heartbeat), so the next start or another process takes
   * them over at once: a restart never cancels or loses a job.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.recovery?.stop();
    for (const { cancel } of this.running.values()) cancel.abort();
    for (let h = this.queue.shift(); h; h = this.queue.shift()) this.interrupt(h);
    const deadline = Date.now() + 10_000;
    while ((this.running.size > 0 || this.settling.size > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    try {
      await answered('handing jobs back', releaseJobs(this.o.db, this.instanceId, this.letGo), 3_000);
    } catch (err) {
      // they are taken over once stale instead
      this.log.warn({ err, jobs: this.letGo.length }, 'could not hand unfinished jobs back');
    }
  }

  /** Lets a held job go: its handle ends with 'interrupted'; on a stop it is handed back. */
  private interrupt(h: Held): void {
    for (const s of h.slots) s.release();
    this.positions.delete(h.id);
    if (this.stopped) this.letGo.push(h.id);
    this.emit({ type: 'interrupted', jobId: h.id }, h.channel);
  }

  /** Admits, charges and queues a job, or throws a UserError; nothing is charged on refusal. */
  async submit(input: JobSubmission): Promise<JobHandle> {
    if (this.stopped)
      throw new UserError('shutting-down', 'The bot is restarting; try again in a minute.', {});
    const denoises = input.denoises ?? [input.request.denoise];
    // each value is checked with the request: an empty list would check nothing
    if (denoises.length === 0) {
      throw new UserError('bad-option', 'denoise must list at least one value', { option: 'denoise' });
    }
    try {
      for (const denoise of denoises)
        validateRequest({ ...input.request, denoise }, this.o.limits ?? CLI_LIMITS);
    } catch (err) {
      if (err instanceof RequestError) {
        throw new UserError('bad-option', err.message, { option: err.option }, { cause: err });
      }
      throw err;
    }
    if (input.kind === 'upscale') await this.checkParent(input);
    const cost = jobCost(input.kind, input.request, denoises.length);
    const slots = await this.admit(input.guildId, input.userId);
    const jobId = newJobId();
    const scope = { guildId: input.guildId, userId: input.userId, roleIds: input.roleIds ?? [] };
    let row: JobRow;
    let charged: Awaited<ReturnType<typeof reserve>>;
    const recording = inTransaction(this.o.db, async (t) => {
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
        interactionToken: input.interaction?.token ?? null,
        interactionExpiresAt: input.interaction?.expiresAt ?? null,
      });
      return [inserted, u] as const;
    });
    try {
      [row, charged] = await answered('recording a new job', recording, this.o.dbAnswerMs);
    } catch (err) {
      for (const s of slots) s.release();
      if (err instanceof UserError) throw err;
      if (err instanceof NoAnswerError) {
        // the user is told to try again: if the database commits the job after all, it is ended
        // at once, refunded, and never run
        recording
          .then(
            ([late]) => this.endUnheld(late, { status: 'cancelled' }),
            () => {},
          )
          .catch((late: unknown) =>
            this.log.error({ jobId, err: late }, 'could not end a job recorded after its user was refused'),
          );
      }
      this.log.error({ err }, 'could not record a new job');
      throw databaseUnavailable(err);
    }
    const channel = new JobChannel();
    const position = this.enqueue({ id: jobId, userId: input.userId, row, slots, channel });
    this.emit(
      { type: 'queued', jobId, position, queueLength: this.queue.size, cost, usage: charged },
      channel,
    );
    this.afterQueueChange();
    return {
      jobId,
      cost,
      usage: charged,
      position,
      subscribe: (listener) => channel.subscribe(listener),
      result: channel.result,
      [Symbol.asyncIterator]: () => channel[Symbol.asyncIterator](),
    };
  }

  /** The events of a job this process holds (after a restart: a recovered one), or undefined. */
  watch(jobId: string): Pick<JobHandle, 'subscribe' | 'result' | typeof Symbol.asyncIterator> | undefined {
    const channel = this.heldJob(jobId)?.channel;
    if (!channel) return undefined;
    return {
      subscribe: (listener) => channel.subscribe(listener),
      result: channel.result,
      [Symbol.asyncIterator]: () => channel[Symbol.asyncIterator](),
    };
  }

  /** Jobs this process holds, running first (position 0), then waiting in run order. */
  entries(): QueueEntry[] {
    const entry = (h: Held, position: number) => ({
      jobId: h.id,
      guildId: h.row.guildId,
      userId: h.userId,
      position,
    });
    return [
      ...[...this.running.values()].map((r) => entry(r.held, 0)),
      ...this.queue.order().map((h, i) => entry(h, i + 1)),
    ];
  }

  /** Adds a job to the fair queue; returns its position (1 = next). */
  private enqueue(h: Held): number {
    this.queue.push(h);
    const position = this.queue.order().findIndex((q) => q.id === h.id) + 1;
    this.positions.set(h.id, position);
    return position;
  }

  /** A lookup for a user's request: a database that fails or hangs is 'unavailable'. */
  private async lookUp<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await answered(what, work(), this.o.dbAnswerMs);
    } catch (err) {
      this.log.warn({ err }, `${what} failed`);
      throw databaseUnavailable(err);
    }
  }

  private async checkParent(input: JobSubmission): Promise<void> {
    const { parentJobId } = input;
    const parent = parentJobId
      ? await this.lookUp('looking up a job', () => getJob(this.o.db, parentJobId))
      : undefined;
    if (
      !parent ||
      parent.guildId !== input.guildId ||
      parent.kind !== 'imagine' ||
      parent.status !== 'done' ||
      // the retention sweep deletes base latents after LATENT_RETENTION_DAYS
      !(await this.lookUp('looking up a base latent', () => hasLatent(this.o.db, parent.id)))
    ) {
      throw new UserError('not-found', 'That image is no longer available to upscale.', { what: 'image' });
    }
  }

  /** Takes a per-user and a queue slot, or throws a UserError saying which limit was hit. */
  admit(guildId: string, userId: string): Promise<Slot[]> {
    return admitJob(this.o.limiters, guildId, userId);
  }

  /** Cancels a queued or running job: its owner or an admin. */
  async cancel(jobId: string, by: { userId: string; isAdmin: boolean }): Promise<void> {
    const held = this.heldJob(jobId);
    const job = held?.row ?? (await this.lookUp('looking up a job', () => getJob(this.o.db, jobId)));
    if (!job) throw new UserError('not-found', 'No such job.', { what: 'job' });
    if (job.userId !== by.userId && !by.isAdmin) {
      throw new UserError('not-allowed', 'Only its owner or an admin can cancel this job.', {
        action: 'cancel',
        reason: 'not-owner',
      });
    }
    const running = this.running.get(jobId);
    if (running) {
      running.cancelRequested = true;
      running.cancel.abort();
      return;
    }
    if (this.settling.has(jobId)) return; // its outcome is already being written
    const waiting = this.queue.remove(jobId);
    if (waiting) {
      this.positions.delete(jobId);
      await this.end(waiting, { status: 'cancelled' });
      this.afterQueueChange();
      return;
    }
    if (job.status !== 'queued' && job.status !== 'running') {
      throw new UserError(
        'already-finished',
        `That job has already ${job.status === 'done' ? 'finished' : job.status}.`,
        {
          status: job.status,
        },
      );
    }
    if (job.status === 'running') {
      throw new UserError(
        'not-allowed',
        'That job is running on another bot process and can only be stopped there.',
        {
          action: 'cancel',
          reason: 'other-process',
        },
      );
    }
    // queued under another (or no) process: end it there; its markRunning will then fail
    await this.end(
      { id: jobId, userId: job.userId, row: job, slots: [], channel: new JobChannel() },
      { status: 'cancelled' },
      job.owner ?? this.instanceId,
    );
  }

  /** Starts what the engines have room for, then tells waiting jobs whose position moved. */
  private afterQueueChange(): void {
    while (!this.stopped && this.running.size < this.concurrency && this.queue.size > 0) {
      const next = this.queue.shift() as Held;
      this.positions.delete(next.id);
      const run: Running = { held: next, cancel: new AbortController(), cancelRequested: false };
      this.running.set(next.id, run);
      void this.run(run);
    }
    const order = this.queue.order();
    order.forEach((h, i) => {
      if (this.positions.get(h.id) !== i + 1) {
        this.positions.set(h.id, i + 1);
        this.emit({ type: 'position', jobId: h.id, position: i + 1, queueLength: order.length }, h.channel);
      }
    });
  }

  private async run(r: Running): Promise<void> {
    const { held } = r;
    const stopped = () => this.stopped;
    let engineDone: Promise<void> | undefined;
    try {
      const row = await retrying('starting a job', () => markRunning(this.o.db, held.id, this.instanceId), {
        stopped,
        forMs: this.o.dbRetryMs,
        onRetry: (err, attempt) =>
          this.log.warn({ jobId: held.id, err, attempt }, 'could not mark a job running; retrying'),
      });
      if (!row) {
        // cancelled or taken over by another process while it waited: whoever did that settled it
        for (const s of held.slots) s.release();
        await this.endedElsewhere(held);
        return;
      }
      held.row = row;
      this.emit({ type: 'started', jobId: held.id, attempt: row.attempts }, held.channel);
      const execution = runOnEngine({
        engine: this.o.engine,
        db: this.o.db,
        row,
        cancel: r.cancel.signal,
        cancelRequested: () => r.cancelRequested,
        timeoutMs: this.o.jobTimeoutMs,
        onProgress: (progress) => this.emit({ type: 'progress', jobId: row.id, progress }, held.channel),
        log: this.log,
      });
      engineDone = execution.engineDone;
      const result = await execution.outcome;
      if (this.stopped && !r.cancelRequested && result.status !== 'done') {
        this.interrupt(held); // left unfinished in the database for whoever starts next
      } else {
        await this.end(held, result);
      }
    } catch (err) {
      // the database stayed away: let the job go; recovery takes it up once it is stale
      this.log.error({ jobId: held.id, err }, 'job bookkeeping failed; left for recovery');
      this.interrupt(held);
    } finally {
      // an aborted engine stops between steps: the job's slot stays taken until then
      await engineDone;
      this.running.delete(held.id);
      this.afterQueueChange();
    }
  }

  /**
   * Final bookkeeping, retried through a database blink: status, latent and ledger in one
   * transaction, then the event; slots released last. A job whose bookkeeping cannot be written
   * is let go (no heartbeat) for recovery to take up.
   */
  private async end(h: Held, outcome: Outcome, owner = this.instanceId): Promise<void> {
    const { db } = this.o;
    const scope = { guildId: h.row.guildId, userId: h.row.userId };
    this.settling.set(h.id, h);
    try {
      const settled = await writeOutcome(
        db,
        { jobId: h.id, owner, scope, outcome },
        {
          stopped: () => this.stopped,
          forMs: this.o.dbRetryMs,
          onRetry: (err, attempt) =>
            this.log.warn({ jobId: h.id, err, attempt }, 'could not settle a job; retrying'),
        },
      );
      if (settled === undefined) {
        await this.endedElsewhere(h);
        return;
      }
      const job = { ...h.row, status: outcome.status, interactionToken: null } as JobRow;
      this.log.info(
        {
          jobId: h.id,
          kind: job.kind,
          status: outcome.status,
          cost: job.cost,
          ...(outcome.status === 'done' ? { timings: outcome.timings } : {}),
        },
        `job ${outcome.status}`,
      );
      if (outcome.status === 'done') {
        const { latent: _latent, ...images } = outcome.images;
        const u = await usage(db, scope, this.o.quota).catch(() => undefined);
        this.emit(
          { type: 'done', jobId: h.id, job, images, usage: u ?? emptyUsage(), timings: outcome.timings },
          h.channel,
        );
      } else if (outcome.status === 'cancelled') {
        this.emit({ type: 'cancelled', jobId: h.id, job, refunded: settled }, h.channel);
      } else {
        const { reason, message } = outcome;
        this.emit({ type: 'failed', jobId: h.id, job, reason, message, refunded: settled }, h.channel);
      }
    } finally {
      this.settling.delete(h.id);
      for (const s of h.slots) s.release();
    }
  }

  /**
   * A job held here was ended, or taken over, by another process (this one looked dead to it):
   * its handle still gets a final event. Cancelled or failed there: that outcome; anything else
   * (running there, or done there): 'interrupted', for the process that now holds it answers.
   */
  private async endedElsewhere(h: Held): Promise<void> {
    const row = await getJob(this.o.db, h.id).catch(() => undefined);
    const job = row && ({ ...row, interactionToken: null } as JobRow);
    const refunded = async () =>
      (await settlementOf(this.o.db, { guildId: h.row.guildId, userId: h.row.userId }, h.id).catch(
        () => undefined,
      )) === 'refund';
    if (job?.status === 'cancelled') {
      this.emit({ type: 'cancelled', jobId: h.id, job, refunded: await refunded() }, h.channel);
    } else if (job?.status === 'failed') {
      const message = job.error ?? 'ended by another bot process';
      this.emit(
        { type: 'failed', jobId: h.id, job, reason: 'error', message, refunded: await refunded() },
        h.channel,
      );
    } else {
      this.log.warn({ jobId: h.id, owner: row?.owner }, 'another bot process took over a job held here');
      this.emit({ type: 'interrupted', jobId: h.id }, h.channel);
    }
  }

  /**
   * Recovery: queues a job taken over from a dead process, with fresh admission slots. A job
   * the limits now refuse is failed and refunded; with the queue service away it is let go, and
   * the next sweep takes it up again.
   */
  private async adopt(row: JobRow): Promise<void> {
    if (this.stopped) {
      this.letGo.push(row.id); // claimed by a pass that ran into the stop: handed back with the rest
      return;
    }
    let slots: Slot[];
    try {
      slots = await this.admit(row.guildId, row.userId);
    } catch (err) {
      if (UserError.is(err, 'unavailable')) {
        this.log.warn({ jobId: row.id, err }, 'cannot queue a recovered job now; the next sweep retries');
        return;
      }
      const why = err instanceof Error ? err.message : String(err);
      await this.endUnheld(row, {
        status: 'failed',
        reason: 'requeue-refused',
        message: `interrupted by a restart and could not be queued again: ${why}`,
      });
      return;
    }
    const channel = new JobChannel();
    const position = this.enqueue({ id: row.id, userId: row.userId, row, slots, channel });
    this.log.info({ jobId: row.id }, 're-queued a job left by a stopped process');
    this.emit({ type: 'requeued', jobId: row.id, job: row, position, queueLength: this.queue.size }, channel);
    this.afterQueueChange();
  }

  /** Ends a job this process owns but does not hold (failed or cancelled, refunded). */
  private endUnheld(row: JobRow, outcome: Outcome & { status: 'failed' | 'cancelled' }): Promise<void> {
    return this.end({ id: row.id, userId: row.userId, row, slots: [], channel: new JobChannel() }, outcome);
  }
}

/** Usage could not be read after a done job (a blink): the event still goes out. */
function emptyUsage() {
  return {
    used: Number.NaN,
    budget: Number.NaN,
    remaining: Number.NaN,
    blocked: false,
    resetsAt: new Date(Number.NaN),
  };
}
