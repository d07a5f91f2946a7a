/**
 * From the job service's hand-backs (src/jobs/hand-back.ts) to the front end's `onHandedBack`.
 * A process takes over dead processes' jobs as it starts, before its bot or REST follower
 * listens: those are kept and told to the first listener, if still waiting in the queue by then
 * (a worker has claimed its own at once; a gateway's wait for a worker, and say so).
 */
import type { Db } from '../db/client.ts';
import type { JobRow } from '../db/schema.ts';
import { getJob } from '../jobs/job-store.ts';
import type { JobService } from '../jobs/service.ts';
import type { HandedBackJob } from './services.ts';

type Listener = (job: HandedBackJob) => Promise<void>;

/** Kept at most, before anyone listens (a start after an outage may take over many). */
const KEEP = 100;

export function relayHandBacks(o: {
  db: Db;
  jobs: JobService;
  jobOf: (row: JobRow) => HandedBackJob;
}): (listener: Listener) => () => void {
  const listeners = new Set<Listener>();
  const untold: JobRow[] = [];
  const { jobOf } = o;
  o.jobs.onHandedBack(async (row) => {
    if (listeners.size === 0) {
      if (untold.length < KEEP) untold.push(row);
      return;
    }
    await Promise.all([...listeners].map((l) => l(jobOf(row))));
  });
  const tellLate = async (listener: Listener, rows: JobRow[]) => {
    for (const row of rows) {
      const now = await getJob(o.db, row.id).catch(() => undefined);
      if (now?.status === 'queued') await listener(jobOf(row)).catch(() => {});
    }
  };
  return (listener) => {
    listeners.add(listener);
    const early = untold.splice(0);
    if (early.length > 0) void tellLate(listener, early);
    return () => listeners.delete(listener);
  };
}
