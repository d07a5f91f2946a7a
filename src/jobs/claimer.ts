/**
 * This process's side of the shared queue: claim passes while the engines have room, one at a
 * time. Triggers (a notification, the poll, a job ending, a submission here) are coalesced: a
 * call while a pass waits to begin joins it, so the pass sees every job queued before it. A pass
 * asks for as many jobs as engines are free, in one statement, and ends when it got fewer: no
 * second, empty claim to learn that nothing more waits.
 */
import type { Db } from '../db/client.ts';
import type { JobRow } from '../db/schema.ts';
import { claimBatch } from './pg-queue.ts';
import type { JobServiceLog } from './types.ts';

export interface ClaimerHooks {
  db: Db;
  instanceId: string;
  log: JobServiceLog;
  /** How many engines are free. */
  free(): number;
  /** Whether every new or requeued job is announced (a notification): then 'room' may skip a pass. */
  hearsNews(): boolean;
  stopped(): boolean;
  /** A claimed job, to run (or end) here. */
  take(row: JobRow): void;
  /** A job claimed as the process stopped: handed back with the rest. */
  letGo(id: string): void;
}

/**
 * Why a pass is asked for: `news`, a job may have been queued (a notification, the poll, a
 * submission, recovery); `room`, an engine came free. A `room` pass is skipped while the last pass
 * found the queue drained and no news came since: about one empty claim per job otherwise.
 */
export type ClaimReason = 'news' | 'room';

export class Claimer {
  private pending: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** The last pass got fewer jobs than it asked for, and no job was announced since. */
  private drained = false;

  constructor(private readonly o: ClaimerHooks) {}

  /** One pass: claims until the engines are full or nothing waits. Never rejects. */
  claim(reason: ClaimReason): Promise<void> {
    if (this.o.stopped()) return Promise.resolve();
    if (reason === 'news') this.drained = false;
    else if (this.drained && this.o.hearsNews()) return this.pending ?? Promise.resolve();
    // (pending is the caught pass: a caller joining it never sees a rejection)
    if (this.pending) return this.pending;
    const pass = this.chain.then(async () => {
      this.pending = undefined;
      for (let free = this.o.free(); !this.o.stopped() && free > 0; free = this.o.free()) {
        const { rows, more } = await claimBatch(this.o.db, this.o.instanceId, free);
        for (const row of rows) {
          if (this.o.stopped()) this.o.letGo(row.id);
          else this.o.take(row);
        }
        // (news meanwhile has its own pass queued behind this one)
        if (!more) this.drained = true;
        if (rows.length < free || !more) return;
      }
    });
    const caught = pass.catch((err) => {
      // the poll tries again
      this.o.log.warn({ err }, 'could not claim a job from the queue');
    });
    this.pending = caught;
    this.chain = caught;
    return caught;
  }

  /**
   * Runs `work` between two passes: recovery's takeover, which must not see a job claimed this
   * instant (not yet among the held ones) as stale.
   */
  alone<T>(work: () => Promise<T>): Promise<T> {
    const run = this.chain.then(work);
    this.chain = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** Resolves once no pass is in flight. */
  idle(): Promise<void> {
    return this.chain;
  }
}
