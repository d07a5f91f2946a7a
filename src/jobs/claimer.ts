/**
 * This process's side of the shared queue: claim passes while the engines have room, one at a
 * time. Triggers (a notification, the poll, a job ending, a submission here) are coalesced: a
 * call while a pass waits to begin joins it, so the pass sees every job queued before it.
 */
import type { Db } from '../db/client.ts';
import type { JobRow } from '../db/schema.ts';
import { claimNext } from './pg-queue.ts';
import type { JobServiceLog } from './types.ts';

export interface ClaimerHooks {
  db: Db;
  instanceId: string;
  log: JobServiceLog;
  /** Whether an engine is free. */
  room(): boolean;
  stopped(): boolean;
  /** A claimed job, to run (or end) here. */
  take(row: JobRow): void;
  /** A job claimed as the process stopped: handed back with the rest. */
  letGo(id: string): void;
}

export class Claimer {
  private pending: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly o: ClaimerHooks) {}

  /** One pass: claims until the engines are full or nothing waits. Never rejects. */
  claim(): Promise<void> {
    if (this.o.stopped()) return Promise.resolve();
    if (this.pending) return this.pending;
    const pass = this.chain.then(async () => {
      this.pending = undefined;
      while (!this.o.stopped() && this.o.room()) {
        const row = await claimNext(this.o.db, this.o.instanceId);
        if (!row) return;
        if (this.o.stopped()) {
          this.o.letGo(row.id);
          return;
        }
        this.o.take(row);
      }
    });
    this.pending = pass;
    this.chain = pass.catch((err) => {
      this.pending = undefined;
      // the poll tries again
      this.o.log.warn({ err }, 'could not claim a job from the queue');
    });
    return this.chain;
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
