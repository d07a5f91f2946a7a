/**
 * A job that was running goes back to the queue when its process stops (a clean stop hands it
 * back) or dies (recovery takes it over). Until a worker claims it again, nothing else would touch
 * its member's reply, which would go on showing the progress of a run that is over: so the
 * process that puts it back tells its listeners (the front end edits the reply once), and waits a
 * few seconds at most for them, then lets the job go.
 */
import type { Db } from '../db/client.ts';
import type { JobRow } from '../db/schema.ts';
import { answered } from './db-deadline.ts';
import { getJob } from './job-store.ts';
import type { JobServiceLog } from './types.ts';

/** Says, somewhere the member sees it, that a job that ran is waiting again. */
export type HandedBackListener = (row: JobRow) => Promise<void>;

/** How long a stop or a takeover waits for the listeners: a slow Discord must not hold it. */
const SAY_MS = 3_000;

export class HandBacks {
  private readonly listeners = new Set<HandedBackListener>();

  constructor(private readonly o: { db: Db; log: JobServiceLog; sayMs?: number }) {}

  on(listener: HandedBackListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Jobs this process ran and is about to hand back as it stops: said while their rows still
   * say running here, so that no other process claims one and paints its progress before this.
   */
  stopping(rows: readonly JobRow[]): Promise<void> {
    return this.say(rows);
  }

  /**
   * A job recovery took over from a dead process (already queued again): said unless another
   * process claimed it meanwhile (its follower answers now) or it ended.
   */
  async takenOver(row: JobRow): Promise<void> {
    if (this.listeners.size === 0) return;
    try {
      const now = await answered('reading a job taken over', getJob(this.o.db, row.id), this.sayMs);
      if (now?.status !== 'queued') return;
    } catch (err) {
      this.o.log.warn({ err, jobId: row.id }, 'could not read a job taken over; its reply is not told');
      return;
    }
    await this.say([row]);
  }

  private get sayMs(): number {
    return this.o.sayMs ?? SAY_MS;
  }

  private async say(rows: readonly JobRow[]): Promise<void> {
    if (rows.length === 0 || this.listeners.size === 0) return;
    const said = rows.flatMap((row) =>
      [...this.listeners].map((l) =>
        Promise.resolve()
          .then(() => l(row))
          .catch((err: unknown) =>
            this.o.log.warn({ err, jobId: row.id }, 'could not say that a job is queued again'),
          ),
      ),
    );
    try {
      await answered('saying jobs are queued again', Promise.all(said), this.sayMs);
    } catch (err) {
      this.o.log.warn({ err, jobs: rows.length }, 'saying jobs are queued again took too long; going on');
    }
  }
}
