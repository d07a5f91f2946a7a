/**
 * The job lifecycle between "a user asked" and "the engine ran": admission (per-user and queue
 * limits) → quota reservation + job row in one transaction → the shared queue in the database
 * (pg-queue.ts) → a claim by any process with room on its engines (the one gate on how many
 * jobs run: one per engine) → done + commit, or failed/cancelled + refund. `submit` returns a
 * handle with the job's own events: from this process while the job waits and, when it is claimed
 * here, until it ends; a job claimed elsewhere ends its handle with 'interrupted' and the process
 * running it answers (its front end follows it as a recovered job). Jobs survive a crash: their
 * rows carry the full request, and a dead process's running jobs go back to the queue (recovery.ts).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { JobRow } from '../db/schema.ts';
import { shuttingDown, UserError } from '../user-error.ts';
import { admitJob } from './admission.ts';
import { Claimer, type ClaimReason } from './claimer.ts';
import { jobCost } from './cost.ts';
import { answered, databaseUnavailable, NoAnswerError } from './db-deadline.ts';
import { type Outcome, runOnEngine } from './engine-run.ts';
import { HandBacks, type HandedBackListener } from './hand-back.ts';
import { JobChannel } from './job-channel.ts';
import { getJob, newJobId, releaseJobs } from './job-store.ts';
import type { Slot } from './limiters.ts';
import { positionOf, requestCancel } from './pg-queue.ts';
import { type QueueSignals, startQueueSignals } from './queue-signals.ts';
import { type Usage, unknownUsage, usage } from './quota-standing.ts';
import { recordJob } from './recording.ts';
import { isRedraw, type Recovery, startRecovery } from './recovery.ts';
import { outcomeElsewhere, writeOutcome } from './settlement.ts';
import { checkParent, checkRequest } from './submission-checks.ts';
import type { JobEvent, JobHandle, JobServiceLog, JobServiceOptions, JobSubmission } from './types.ts';
import { Waiting } from './waiting.ts';

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

/**
 * How long a done job stays this process's to deliver when the front end never says it was
 * (no front end, or its delivery failed): then it is another's, or this one's recovery's, to
 * draw again (recovery.ts), within the bounds on attempts.
 */
const DELIVERY_HOLD_MS = 10 * 60_000;

const QUIET_LOG: JobServiceLog = { info: () => {}, warn: () => {}, error: () => {} };

export class JobService {
  readonly instanceId: string;
  private readonly waiting: Waiting;
  private readonly running = new Map<string, Running>();
  /** Jobs whose outcome is known but not yet written (the database may be blinking). */
  private readonly settling = new Map<string, Held>();
  /**
   * Jobs done here whose result the front end has not yet recorded as delivered: heartbeated, so
   * that no other process draws them again while this one delivers; given up after a while.
   */
  private readonly delivering = new Map<string, NodeJS.Timeout>();
  private readonly listeners = new Set<(event: JobEvent) => void>();
  private readonly log: JobServiceLog;
  private readonly concurrency: number;
  private recovery: Recovery | undefined;
  private signals: QueueSignals | undefined;
  /** Jobs a stop interrupted, to hand back when it is done. */
  private readonly letGo: string[] = [];
  /** Of those, the ones that were running here: their replies are told before they go back. */
  private readonly ranBeforeStop: JobRow[] = [];
  private readonly handBacks: HandBacks;
  /**
   * Jobs being submitted here, with the row when a claim here took one before the submission
   * had registered it (the insert's notification can come first): started once it has.
   */
  private readonly submitting = new Map<string, JobRow | undefined>();
  /** Jobs whose member was told "try again" while the database had not answered: never run here. */
  private readonly refused = new Set<string>();
  private stopped = false;
  private readonly claimer: Claimer;

  constructor(private readonly o: JobServiceOptions) {
    this.instanceId = o.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = o.log ?? QUIET_LOG;
    this.handBacks = new HandBacks({ db: o.db, log: this.log });
    this.concurrency = o.engine ? (o.concurrency ?? o.engine.size ?? 1) : 0;
    this.waiting = new Waiting({
      db: o.db,
      instanceId: this.instanceId,
      log: this.log,
      emit: (event, h) => this.emit(event, h.channel),
      gone: (h) => this.gone(h),
    });
    this.claimer = new Claimer({
      db: o.db,
      instanceId: this.instanceId,
      log: this.log,
      free: () => this.concurrency - this.running.size - this.claimedEarly(),
      hearsNews: () => this.signals?.listening === true,
      stopped: () => this.stopped,
      take: (row) => this.startClaimed(row),
      letGo: (id) => this.letGo.push(id),
    });
  }

  private claimedEarly(): number {
    return [...this.submitting.values()].filter(Boolean).length;
  }

  private claim(reason: ClaimReason): Promise<void> {
    return this.concurrency === 0 ? Promise.resolve() : this.claimer.claim(reason);
  }

  /** Subscribes to every job's events (recovered jobs included); returns the unsubscribe. */
  on(listener: (event: JobEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Subscribes to the jobs that ran and that this process puts back in the queue (it stops, or
   * it took them over from a dead one); the service waits a few seconds at most for the promise.
   */
  onHandedBack(listener: HandedBackListener): () => void {
    return this.handBacks.on(listener);
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
    return this.running.get(id)?.held ?? this.settling.get(id) ?? this.waiting.find(id);
  }

  /**
   * Ids of the jobs this process runs, settles or delivers: the ones it heartbeats and recovery
   * leaves alone.
   */
  heldIds(): string[] {
    return [...this.running.keys(), ...this.settling.keys(), ...this.delivering.keys()];
  }

  /** The front end recorded where a done job's result went: no longer this process's to deliver. */
  delivered(jobId: string): void {
    clearTimeout(this.delivering.get(jobId));
    this.delivering.delete(jobId);
  }

  /** A done job this process now delivers (held until `delivered`, or DELIVERY_HOLD_MS). */
  private deliver(jobId: string): void {
    const timer = setTimeout(() => this.delivering.delete(jobId), DELIVERY_HOLD_MS);
    timer.unref();
    this.delivering.set(jobId, timer);
  }

  /**
   * Whether what this process says of a job may be shown: false for a job running here while
   * this process cannot be sure it still owns it (frozen past half the staleness bound, until
   * its next heartbeat says), so a resumed process never paints over the reply of the process
   * that took the job over.
   */
  mayReport(jobId: string): boolean {
    return !this.running.has(jobId) || (this.recovery?.surelyOwns() ?? true);
  }

  /** Puts dead processes' running jobs back in the queue, then keeps listening, claiming and sweeping. */
  async start(): Promise<void> {
    this.recovery = await startRecovery(this.o, this.log, {
      instanceId: this.instanceId,
      held: () => this.heldIds(),
      adopt: async (row) => {
        await this.handBacks.takenOver(row); // before a claim here paints its progress
        void this.claim('news');
      },
      fail: (row, reason, message) => this.endUnheld(row, { status: 'failed', reason, message }),
      cancelled: (ids) => {
        for (const id of ids) this.cancelHere(id);
      },
      lost: (ids) => {
        for (const id of ids) {
          this.delivered(id); // (a done one: delivered meanwhile, or another's to redraw now)
          // its settle then finds another owner and ends the handle as interrupted
          if (this.cancelHere(id))
            this.log.warn({ jobId: id }, 'another process took over a job running here: stopped');
        }
      },
      // a job claimed this instant is not yet among held(): its row must not look stale here
      alone: (work) => this.claimer.alone(work),
    });
    this.signals = await startQueueSignals(
      { listen: this.o.listen, pollMs: this.o.pollMs ?? 1_000, log: this.log },
      {
        change: (c) => {
          this.waiting.changed(c);
          // a job this process already took (its own submission, most often) needs no pass
          if (c.status === 'queued' && !this.running.has(c.jobId) && !this.submitting.get(c.jobId))
            void this.claim('news');
        },
        cancel: (jobId) => this.cancelHere(jobId),
        poll: () => {
          void this.claim('news');
          this.waiting.poll().catch((err) => this.log.warn({ err }, 'queue poll failed'));
        },
      },
    );
    await this.claim('news');
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
   * Stops claiming and starting jobs and interrupts running ones. Unfinished jobs stay in the
   * database, handed back (queued, no heartbeat), so another process or the next start takes
   * them at once: a restart never cancels or loses a job.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.signals?.stop();
    await this.recovery?.stop();
    for (const id of [...this.delivering.keys()]) this.delivered(id);
    await this.claimer.idle(); // a job claimed meanwhile is handed back below
    for (const { cancel } of this.running.values()) cancel.abort();
    for (const h of this.waiting.drain()) this.interrupt(h);
    const deadline = Date.now() + 10_000;
    while ((this.running.size > 0 || this.settling.size > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    // while the rows still say running here: no other process claims one before it is said
    await this.handBacks.stopping(this.ranBeforeStop);
    try {
      await answered('handing jobs back', releaseJobs(this.o.db, this.instanceId, this.letGo), 3_000);
    } catch (err) {
      // they are taken over once stale instead
      this.log.warn({ err, jobs: this.letGo.length }, 'could not hand unfinished jobs back');
    }
  }

  /** Lets a held job go: its handle ends with 'interrupted'; on a stop it is handed back. */
  private interrupt(h: Held, ranHere = false): void {
    for (const s of h.slots) s.release();
    if (this.stopped) this.letGo.push(h.id);
    if (this.stopped && ranHere) this.ranBeforeStop.push(h.row);
    this.emit({ type: 'interrupted', jobId: h.id }, h.channel);
  }

  /** Admits, charges and queues a job, or throws a UserError; nothing is charged on refusal. */
  async submit(input: JobSubmission): Promise<JobHandle> {
    if (this.stopped) throw shuttingDown();
    const denoises = checkRequest(input, this.o.limits);
    if (input.kind === 'upscale')
      await checkParent(this.o.db, input, (what, work) => this.lookUp(what, work));
    const cost = jobCost(input.kind, input.request, denoises.length);
    const slots = await this.admit(input.guildId, input.userId);
    const jobId = newJobId();
    this.submitting.set(jobId, undefined);
    let row: JobRow;
    let charged: Usage;
    let position: number;
    let queueLength: number;
    const { users, queue } = this.o.limiters;
    const recording = recordJob(this.o.db, { id: jobId, input, denoises, cost }, this.o.quota, {
      perUser: users.limit,
      queueMax: queue.limit,
    });
    try {
      [row, charged] = await answered('recording a new job', recording, this.o.dbAnswerMs);
      // (taken here already, by the pass its notification started: no position to read)
      const stands = this.submitting.get(jobId)
        ? undefined
        : await answered('reading the queue', positionOf(this.o.db, jobId), this.o.dbAnswerMs);
      // (claimed already, by a process with a free engine: next, of those that waited)
      position = stands?.position ?? 1;
      queueLength = stands?.waiting ?? 0;
    } catch (err) {
      for (const s of slots) s.release();
      const early = this.submitting.get(jobId);
      this.submitting.delete(jobId);
      if (err instanceof NoAnswerError) this.refused.add(jobId);
      if (early) this.startClaimed(early); // refused: ended at once; else run, its member told to retry
      if (err instanceof UserError) throw err;
      if (err instanceof NoAnswerError) {
        // the user is told to try again: if the database commits the job after all, it is ended
        // at once, refunded, and never run (a claim here that comes first ends it the same way)
        // the mark is dropped once it has done its work: the job ended here, claimed first (here,
        // that claim ended it; elsewhere it is no longer ours to stop), or never recorded
        recording
          .then(
            async ([late]) => {
              await this.endQueued(late);
              this.refused.delete(jobId);
            },
            () => this.refused.delete(jobId),
          )
          .catch((late: unknown) =>
            this.log.error({ jobId, err: late }, 'could not end a job recorded after its user was refused'),
          );
      }
      this.log.error({ err }, 'could not record a new job');
      throw databaseUnavailable(err);
    }
    const channel = new JobChannel();
    const held: Held = { id: jobId, userId: input.userId, row, slots, channel };
    this.waiting.add(held, position);
    this.emit({ type: 'queued', jobId, position, queueLength, cost, usage: charged }, channel);
    const early = this.submitting.get(jobId);
    this.submitting.delete(jobId);
    if (early) this.startClaimed(early);
    // a process with room takes it now, before the caller renders "queued"
    if (!this.running.has(jobId)) await this.claim('news');
    this.queueMoved();
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

  /** A lookup for a user's request: a database that fails or hangs is 'unavailable'. */
  private async lookUp<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await answered(what, work(), this.o.dbAnswerMs);
    } catch (err) {
      this.log.warn({ err }, `${what} failed`);
      throw databaseUnavailable(err);
    }
  }

  /** Takes a per-user and a queue slot, or throws a UserError saying which limit was hit. */
  admit(guildId: string, userId: string): Promise<Slot[]> {
    return admitJob(this.o.limiters, guildId, userId);
  }

  /**
   * Cancels a queued or running job: its owner or an admin. A waiting job is ended in the queue
   * (whichever process queued it); one running elsewhere is asked to stop, and its process
   * answers the member.
   */
  async cancel(jobId: string, by: { userId: string; isAdmin: boolean }): Promise<void> {
    const held = this.heldJob(jobId);
    let job = held?.row ?? (await this.lookUp('looking up a job', () => getJob(this.o.db, jobId)));
    if (!job) throw new UserError('not-found', 'No such job.', { what: 'job' });
    if (job.userId !== by.userId && !by.isAdmin) {
      throw new UserError('not-allowed', 'Only its owner or an admin can cancel this job.', {
        action: 'cancel',
        reason: 'not-owner',
      });
    }
    if (this.cancelHere(jobId)) return;
    if (this.settling.has(jobId)) return; // its outcome is already being written
    if (this.waiting.find(jobId) || job.status === 'queued') {
      if (await this.endQueued(job)) return;
      // claimed meanwhile: stopped where it runs
      if (this.cancelHere(jobId)) return;
      job = (await this.lookUp('looking up a job', () => getJob(this.o.db, jobId))) ?? job;
    }
    if (job.status === 'queued' && (await this.endQueued(job))) return; // handed back meanwhile
    if (job.status === 'running' || job.status === 'queued') {
      await this.lookUp('cancelling a job', () => requestCancel(this.o.db, jobId));
      return;
    }
    throw new UserError(
      'already-finished',
      `That job has already ${job.status === 'done' ? 'finished' : job.status}.`,
      { status: job.status },
    );
  }

  /** Aborts a job running here (a cancel from anywhere); false if it does not run here. */
  private cancelHere(jobId: string): boolean {
    const running = this.running.get(jobId);
    if (!running) return false;
    running.cancelRequested = true;
    running.cancel.abort();
    return true;
  }

  /** Ends a job still waiting in the queue as cancelled (refunded); false if it was claimed first. */
  private async endQueued(row: JobRow): Promise<boolean> {
    const h = this.waiting.find(row.id) ?? unheld(row);
    const ended = await this.end(h, { status: 'cancelled' }, null);
    if (ended) {
      this.waiting.take(row.id);
      this.queueMoved();
    }
    return ended;
  }

  /** The queue changed here: the jobs waiting here hear their new positions (others by notification). */
  private queueMoved(): void {
    if (this.waiting.size > 0) void this.waiting.refresh();
  }

  /** A job claimed here: queued here, its handle goes on; else the front end is handed it. */
  private startClaimed(row: JobRow): void {
    if (this.submitting.has(row.id)) {
      this.submitting.set(row.id, row); // started by submit() once it has registered the job
      return;
    }
    const mine = this.waiting.take(row.id);
    const held: Held = mine ? { ...mine, row } : unheld(row);
    // both times are the database's
    const waitedMs = (row.startedAt?.getTime() ?? 0) - row.createdAt.getTime();
    const withinMs = this.o.requeueWithinMs ?? 3_600_000;
    if (this.refused.delete(row.id)) {
      this.end(held, { status: 'cancelled' }).catch((err) =>
        this.log.error({ jobId: row.id, err }, 'could not end a job recorded after its user was refused'),
      );
      return;
    }
    // (a redraw of a done job that never reached its member is bounded by recovery instead)
    if (waitedMs > withinMs && !isRedraw(row)) {
      // its member gave up long ago (the bot was down, or the queue stood still)
      const message = `waited more than ${Math.round(withinMs / 60_000)} minutes in the queue: not run`;
      this.end(held, { status: 'failed', reason: 'restart-expired', message }).catch((err) =>
        this.log.error({ jobId: row.id, err }, 'could not end a job that waited too long'),
      );
      return;
    }
    const run: Running = { held, cancel: new AbortController(), cancelRequested: false };
    this.running.set(row.id, run);
    if (!mine) {
      this.log.info({ jobId: row.id }, 'took a job queued by another process');
      this.emit({ type: 'requeued', jobId: row.id, job: row, position: 0, queueLength: 0 }, held.channel);
    }
    void this.run(run);
  }

  private async run(r: Running): Promise<void> {
    const { held } = r;
    const { row } = held;
    let engineDone: Promise<void> | undefined;
    try {
      if (row.cancelRequested) r.cancelRequested = true;
      this.emit({ type: 'started', jobId: held.id, attempt: row.attempts }, held.channel);
      const execution = runOnEngine({
        engine: this.o.engine as NonNullable<JobServiceOptions['engine']>,
        db: this.o.db,
        row,
        cancel: r.cancel.signal,
        cancelRequested: () => r.cancelRequested,
        timeoutMs: this.o.jobTimeoutMs,
        onProgress: (progress) => this.emit({ type: 'progress', jobId: row.id, progress }, held.channel),
        log: this.log,
      });
      if (r.cancelRequested) r.cancel.abort();
      engineDone = execution.engineDone;
      const result = await execution.outcome;
      if (this.stopped && !r.cancelRequested && result.status !== 'done') {
        this.interrupt(held, true); // left unfinished in the database for whoever starts next
      } else {
        await this.end(held, result);
      }
    } catch (err) {
      // the database stayed away: let the job go; recovery takes it up once it is stale
      this.log.error({ jobId: held.id, err }, 'job bookkeeping failed; left for recovery');
      this.interrupt(held, true);
    } finally {
      // an aborted engine stops between steps: the job's slot stays taken until then
      await engineDone;
      // a done job's slot was handed to the next job already (end): no second claim pass
      const handedOver = this.running.get(held.id) !== r;
      this.running.delete(held.id);
      if (handedOver) this.queueMoved();
      else void this.claim('room').then(() => this.queueMoved());
    }
  }

  /**
   * Final bookkeeping, retried through a database blink: status, latent and ledger in one
   * transaction, then the event; slots released last. A job whose bookkeeping cannot be written
   * is let go (no heartbeat) for recovery to take up. `owner` null: a job still waiting in the
   * queue (a cancel); then nothing is said when it was claimed first (false).
   */
  private async end(h: Held, outcome: Outcome, owner: string | null = this.instanceId): Promise<boolean> {
    const { db } = this.o;
    // with the roles they had when they asked, so the usage told with the result has their budget
    const scope = { guildId: h.row.guildId, userId: h.row.userId, roleIds: h.row.roleIds ?? [] };
    this.settling.set(h.id, h);
    let ended = false;
    try {
      const written = await writeOutcome(
        db,
        { jobId: h.id, owner, scope, outcome, quota: this.o.quota, redraw: isRedraw(h.row) },
        {
          stopped: () => this.stopped,
          forMs: this.o.dbRetryMs,
          onRetry: (err, attempt) =>
            this.log.warn({ jobId: h.id, err, attempt }, 'could not settle a job; retrying'),
        },
      );
      if (written === undefined) {
        if (owner !== null) await this.endedElsewhere(h);
        return false;
      }
      ended = true;
      if (outcome.status === 'done' && owner !== null && this.o.redrawUndelivered) this.deliver(h.id);
      const run = this.running.get(h.id);
      if (outcome.status === 'done' && run?.held === h) {
        // the engine has answered and the outcome is written: its slot takes the next job now,
        // while this one's usage is read and its event goes out
        this.running.delete(h.id);
        void this.claim('room');
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
        const u = written.usage ?? (await usage(db, scope, this.o.quota).catch(() => undefined));
        this.emit(
          { type: 'done', jobId: h.id, job, images, usage: u ?? unknownUsage(), timings: outcome.timings },
          h.channel,
        );
      } else if (outcome.status === 'cancelled') {
        this.emit({ type: 'cancelled', jobId: h.id, job, refunded: written.settled }, h.channel);
      } else {
        const { reason, message } = outcome;
        this.emit(
          { type: 'failed', jobId: h.id, job, reason, message, refunded: written.settled },
          h.channel,
        );
      }
      return true;
    } finally {
      this.settling.delete(h.id);
      // a waiting job claimed before its cancel keeps its slots until it ends where it runs
      if (owner !== null || ended) for (const s of h.slots) s.release();
    }
  }

  /**
   * A job held here was ended, or taken over, by another process (this one looked dead to it):
   * its handle still gets a final event. Cancelled or failed there: that outcome; anything else
   * (running there, or done there): 'interrupted', for the process that now holds it answers.
   */
  private async endedElsewhere(h: Held): Promise<void> {
    const event = await outcomeElsewhere(this.o.db, h.id, { guildId: h.row.guildId, userId: h.row.userId });
    if (event.type === 'interrupted') {
      this.log.warn({ jobId: h.id }, 'another bot process took over a job held here');
    }
    this.emit(event, h.channel);
  }

  /** A job queued here left the queue without being claimed here: what became of it. */
  private async gone(h: Held): Promise<'running-elsewhere' | 'ended' | 'here'> {
    if (this.running.has(h.id) || this.settling.has(h.id)) return 'here';
    const row = await getJob(this.o.db, h.id);
    if (this.running.has(h.id) || this.settling.has(h.id) || !this.waiting.find(h.id)) return 'here';
    if (row?.status === 'queued') return 'here'; // back in the queue by the next read
    if (row?.status === 'running') return 'running-elsewhere';
    this.waiting.take(h.id);
    await this.endedElsewhere(h);
    for (const s of h.slots) s.release();
    return 'ended';
  }

  /** Ends a job this process owns but does not hold (failed or cancelled, refunded). */
  private async endUnheld(row: JobRow, outcome: Outcome & { status: 'failed' | 'cancelled' }): Promise<void> {
    await this.end(unheld(row), outcome);
  }
}

/** A job this process holds no slots or handle for: a fresh channel nobody listens to yet. */
function unheld(row: JobRow): Held {
  return { id: row.id, userId: row.userId, row, slots: [], channel: new JobChannel() };
}
