/**
 * A gateway watching for GPU workers (it runs no job itself): how many are live, read every few
 * seconds from worker_models, so that a member whose job waits is told when none is there to run
 * it, and the admin is told once per outage in the log, instead of jobs waiting silently.
 */
import type { Db } from '../db/client.ts';
import { answered } from './db-deadline.ts';
import type { JobServiceLog } from './types.ts';
import { workerState } from './worker-models.ts';

export interface WorkerWatchOptions {
  db: Db;
  log: JobServiceLog;
  /** A worker silent this long counts as gone. */
  staleMs: number;
  /** How often the gateway looks. */
  everyMs: number;
  /** A read not answered this long counts as failed (a hung database); default 5 s. */
  answerMs?: number;
}

export interface WorkerWatch {
  /** Live workers at the last answered check; undefined until one has been answered. */
  live(): number | undefined;
  /** Called when live workers go from some to none, or back. */
  onChange(listener: (online: boolean) => void): () => void;
  /** Looks now, as the timer does. */
  check(): Promise<void>;
  stop(): Promise<void>;
}

export async function startWorkerWatch(o: WorkerWatchOptions): Promise<WorkerWatch> {
  const { db, log } = o;
  const listeners = new Set<(online: boolean) => void>();
  let live: number | undefined;
  /** Jobs have waited with no worker since the last one was seen (the admin was warned). */
  let warned = false;
  let failing = false;
  /**
   * When a read last failed (performance.now()): the workers' beats likely failed with it (the
   * database was down or hung), so for the staleness bound after, a worker not heard from is not
   * yet reported gone (as recovery waits to be in touch that long before it takes jobs over).
   */
  let failedAt = Number.NEGATIVE_INFINITY;
  let inFlight: Promise<void> | undefined;
  /** The read the database has not answered yet: a hung one is waited on again, not doubled. */
  let reading: Promise<{ live: number; queued: number }> | undefined;

  const look = async () => {
    let state: { live: number; queued: number };
    try {
      reading ??= workerState(db, o.staleMs).finally(() => {
        reading = undefined;
      });
      state = await answered('reading which GPU workers are live', reading, o.answerMs ?? 5_000);
    } catch (err) {
      // what was seen last stands until the database answers again
      if (!failing) log.warn({ err }, 'could not read which GPU workers are live; retrying');
      failing = true;
      failedAt = performance.now();
      return;
    }
    failing = false;
    const was = live === undefined ? undefined : live > 0;
    // back from an outage: the workers seen before it get the bound to write their rows again
    if (state.live === 0 && was && performance.now() - failedAt < o.staleMs) return;
    live = state.live;
    const online = live > 0;
    if (!online && state.queued > 0 && !warned) {
      warned = true;
      log.warn(
        { queued: state.queued },
        'jobs are waiting and no GPU worker is online: start one (PROCESS_ROLE=worker)',
      );
    } else if (online && warned) {
      warned = false;
      log.info({ workers: live }, 'a GPU worker is online again: the waiting jobs start');
    }
    if (was === online) return; // (from unknown to known is a change too)
    for (const l of listeners) {
      try {
        l(online);
      } catch (err) {
        log.error({ err }, 'worker watch listener failed');
      }
    }
  };
  // one look at a time: a slow database does not pile them up
  const check = (): Promise<void> => {
    inFlight ??= look().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  await check();
  const timer = setInterval(() => void check(), o.everyMs);
  timer.unref();
  return {
    live: () => live,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    check,
    async stop() {
      clearInterval(timer);
      listeners.clear();
      await inFlight;
    },
  };
}
