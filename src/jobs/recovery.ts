/**
 * What keeps jobs from being stranded, on timers: a heartbeat for the jobs this process really
 * holds, recovery of unfinished jobs nobody holds (a dead process's, or one this process had to
 * let go during a database outage), and the retention sweep. Recovery re-queues a job unless it
 * has already been started `maxAttempts` times (each ended by a dead process: it may be what
 * kills them) or was created more than `requeueWithinMs` ago; those are failed and refunded.
 * With `redrawUndelivered`, a done job whose owner died before it delivered the result is queued
 * again too (a redraw, its charge kept: the same request and seed give the same images), if it
 * finished within `redrawWithinMs`, whatever its age; started more than `maxAttempts` times in
 * all, it is refunded.
 *
 * A database outage silences every process's heartbeats alike: once it is back, every job looks
 * stale until its owner's next heartbeat lands, and a recovery pass in between would take the
 * jobs of processes that lived through it (and run them a second time). So, as the admission
 * reaper does with Redis, nothing is taken over until this process has been in touch with the
 * database, without a failure or a query that hung, for `staleMs` again; and a claim is sent only
 * right after a quick round trip, so that it never waits out an outage and lands after it. The
 * heartbeat timer queries the database even when this process holds no job, so that it notices.
 */
import { sql } from 'drizzle-orm';
import type { JobRow } from '../db/schema.ts';
import {
  claimStale,
  clearExpiredTokens,
  deleteLatentsBefore,
  heartbeat,
  REDRAW_WITHIN_MS,
} from './job-store.ts';
import type { FailureReason, JobServiceLog, JobServiceOptions } from './types.ts';

export interface RecoveryHooks {
  instanceId: string;
  /** Ids of the jobs this process holds. */
  held(): string[];
  /** A recovered job is back in the shared queue (claim it if there is room). */
  adopt(row: JobRow): Promise<void>;
  /** End a recovered job that must not run again. */
  fail(row: JobRow, reason: FailureReason, message: string): Promise<void>;
  /** Held jobs another process asked to cancel (seen with the heartbeat). */
  cancelled(ids: string[]): void;
  /** Held jobs another process has taken over (seen with the heartbeat): stop them here. */
  lost(ids: string[]): void;
  /** Runs the takeover when no claim of this process is in flight. */
  alone<T>(work: () => Promise<T>): Promise<T>;
}

export interface Recovery {
  surelyOwns(): boolean;
  /** One recovery pass now (also run on a timer); staleness is judged by the database's clock. */
  recover(): Promise<void>;
  sweep(now?: Date): Promise<void>;
  stop(): Promise<void>;
}

/**
 * How often a process says it is alive (its jobs' heartbeats; a worker's row in worker_models),
 * and how long a silent one takes to count as dead: the defaults of heartbeatMs and staleMs.
 */
export const HEARTBEAT_MS = 5_000;
export const STALE_MS = 30_000;

const DAY_MS = 86_400_000;
/** A recovery or heartbeat query that takes longer than this counts as trouble (a hung database). */
const ANSWER_MS = 2_000;

/** How old a job was when it was claimed, by the database's clock at both ends. */
const ageAtClaim = (row: JobRow) => (row.heartbeatAt?.getTime() ?? 0) - row.createdAt.getTime();

/** An unfinished job that had finished once: a done job drawn again, its result never delivered. */
export const isRedraw = (row: Pick<JobRow, 'finishedAt'>): boolean => row.finishedAt !== null;

export async function startRecovery(
  o: JobServiceOptions,
  log: JobServiceLog,
  hooks: RecoveryHooks,
): Promise<Recovery> {
  // the admission reaper frees a dead process's slots sooner (limiters.ts DEAD_AFTER_MS, 20 s),
  // so that the jobs re-queued here are not refused by their own dead slots
  const staleMs = o.staleMs ?? STALE_MS;
  const maxAttempts = o.maxAttempts ?? 2;
  const requeueWithinMs = o.requeueWithinMs ?? 3_600_000;
  const redrawWithinMs = o.redrawUndelivered ? (o.redrawWithinMs ?? REDRAW_WITHIN_MS) : undefined;

  /**
   * Since when every query of ours has been answered, and quickly: from the first good answer
   * after a failure or a slow answer (a query that waited out an outage proves nothing about the
   * time it waited); undefined until then.
   */
  let inTouchSince: number | undefined = Number.NEGATIVE_INFINITY;
  /** When the last heartbeat that the database answered was sent (performance.now()). */
  let confirmedAt = performance.now();
  const inTouchForStaleMs = () => inTouchSince !== undefined && Date.now() - inTouchSince >= staleMs;
  /** Runs a query, noting whether the database answered it, and quickly. */
  const watched = async <T>(query: () => Promise<T>): Promise<T> => {
    const sent = Date.now();
    let answered = false;
    try {
      const result = await query();
      answered = Date.now() - sent <= ANSWER_MS;
      return result;
    } finally {
      if (!answered) inTouchSince = undefined;
      else inTouchSince ??= Date.now();
    }
  };
  const ping = () => watched(() => o.db.execute(sql`select 1`));

  const recover = async () => {
    if (!inTouchForStaleMs()) return;
    await ping();
    if (!inTouchForStaleMs()) return;
    const rows = await watched(() =>
      hooks.alone(() => claimStale(o.db, hooks.instanceId, staleMs, hooks.held(), redrawWithinMs)),
    );
    for (const row of rows) {
      if (isRedraw(row)) {
        // started more than maxAttempts times in all, its first run included
        if (row.attempts > maxAttempts) {
          log.warn({ jobId: row.id, attempts: row.attempts }, 'a done job could not be delivered: refunded');
          await hooks.fail(
            row,
            'undelivered',
            `drawn ${row.attempts} times, and each time the bot process stopped before its images went out; refunded`,
          );
        } else {
          log.info({ jobId: row.id }, 'a done job whose images never went out is drawn again');
          await hooks.adopt(row);
        }
      } else if (row.attempts >= maxAttempts) {
        log.warn(
          { jobId: row.id, attempts: row.attempts },
          'a job was started twice and each time its process died: failed',
        );
        await hooks.fail(
          row,
          'too-many-attempts',
          `started ${row.attempts} times and each time the bot process stopped under it; not tried again`,
        );
      } else if (ageAtClaim(row) > requeueWithinMs) {
        await hooks.fail(row, 'restart-expired', 'interrupted by a restart, and too old to run again');
      } else {
        await hooks.adopt(row);
      }
    }
  };

  /** PGlite's VACUUM / ANALYZE / CHECKPOINT; the process stands still meanwhile, so it says how long. */
  const runUpkeep = async (all = false) => {
    const done = await o.retention?.maintenance?.({ all });
    if (!done) return;
    const { failed, ...kept } = done;
    if (kept.vacuumed.length + kept.analyzed.length > 0)
      log.info({ ...kept, ms: Math.round(kept.ms) }, 'database upkeep: tables vacuumed and analyzed');
    if (failed.length > 0) log.error({ failed }, 'database upkeep: some tables could not be vacuumed');
  };

  /** Old latents and spent tokens go. */
  const retain = async (now: Date) => {
    const latentDays = o.retention?.latentDays ?? 7;
    const latents = await deleteLatentsBefore(o.db, new Date(now.getTime() - latentDays * DAY_MS));
    const tokens = await clearExpiredTokens(o.db, now);
    if (latents + tokens > 0)
      log.info({ latents, tokens }, 'retention sweep: old latents deleted, spent tokens cleared');
  };
  const sweep = async (now = new Date()) => {
    await retain(now);
    await runUpkeep();
  };

  await recover();
  // (its upkeep not awaited: below, in the background; on a big database it holds the start a while)
  await retain(new Date()).catch((err) => log.error({ err }, 'retention sweep failed'));
  // a timer's run is skipped while its last one is still waiting (an outage): no pile-up of
  // queries in the driver's queue for when the database comes back
  const inFlight = new Set<Promise<void>>();
  /** Runs `fn` in the background, its failure logged; stop() waits for it. */
  const track = (what: string, fn: () => Promise<void>): Promise<void> => {
    const run = fn()
      .catch((err) => log.error({ err }, `${what} failed`))
      .finally(() => inFlight.delete(run));
    inFlight.add(run);
    return run;
  };
  const every = (ms: number, what: string, fn: () => Promise<void>) => {
    let busy = false;
    const t = setInterval(() => {
      if (busy) return;
      busy = true;
      void track(what, fn).finally(() => {
        busy = false;
      });
    }, ms);
    t.unref();
    return t;
  };
  // PGlite's upkeep of every table once now as well, in the background (it holds the process a
  // while on a big database, but not the start-up's awaited steps): what earlier runs left is
  // unknown, and a database that never had statistics must not wait an hour for them (without
  // them every claim read every finished job: 6.9 ms of a 1.5 ms claim with 2 000 of them)
  if (o.retention?.maintenance) void track('database upkeep', () => runUpkeep(true));
  const timers = [
    every(o.heartbeatMs ?? HEARTBEAT_MS, 'heartbeat', async () => {
      const held = hooks.held();
      const sentAt = performance.now();
      if (held.length > 0) {
        const seen = await watched(() => heartbeat(o.db, hooks.instanceId, held));
        hooks.cancelled(seen.cancelled);
        if (seen.lost.length > 0) hooks.lost(seen.lost);
      } else await ping();
      confirmedAt = sentAt;
    }),
    every(staleMs, 'recovery', () => recover()),
    every(o.retention?.sweepMs ?? 3_600_000, 'retention sweep', () => sweep()),
  ];
  return {
    recover,
    sweep,
    /**
     * Whether this process surely still owns the jobs it holds: its last answered heartbeat is
     * younger than half the staleness bound. A process frozen (SIGSTOP, a stalled VM) longer
     * than that may have lost them to another, which it learns only at its next heartbeat.
     */
    surelyOwns: () => performance.now() - confirmedAt < staleMs / 2,
    /** Stops the timers and waits for a run in flight: nothing acts for this process after. */
    async stop() {
      for (const t of timers) clearInterval(t);
      await Promise.allSettled([...inFlight]);
    },
  };
}
