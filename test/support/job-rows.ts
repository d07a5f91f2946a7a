// Job rows written and moved one step at a time, as tests set up a queue's state; the product
// writes them only through its own statements (recording.ts, pg-queue.ts, settlement.ts).
import type { Db } from '../../src/db/client.ts';
import { type JobRow, jobLatents, jobs, type NewJobRow } from '../../src/db/schema.ts';
import type { Latent } from '../../src/diffusion/pipeline.ts';
import { DEFAULT_REQUEST } from '../../src/diffusion/request.ts';
import { finishing, latentValues } from '../../src/jobs/job-store.ts';
import { claimBatch } from '../../src/jobs/pg-queue.ts';

/** A small waiting imagine job of user `u` in guild `g`, with `over` on top. */
export function jobRow(id: string, over: Partial<NewJobRow> = {}): Omit<NewJobRow, 'heartbeatAt'> {
  return {
    id,
    kind: 'imagine',
    guildId: 'g',
    channelId: 'c',
    userId: 'u',
    request: { ...DEFAULT_REQUEST, prompt: 'p', seed: 1 },
    denoises: [0.5],
    seed: 1,
    cost: 1,
    status: 'queued',
    ...over,
  };
}

/** A new job row: waiting in the shared queue, it needs no owner and no heartbeat. */
export async function insertJob(db: Db, row: Omit<NewJobRow, 'heartbeatAt'>): Promise<JobRow> {
  const [inserted] = await db.insert(jobs).values(row).returning();
  return inserted as JobRow;
}

/** Ends an unfinished job `owner` holds (null: a waiting one); false if it had ended or moved. */
export async function finishJob(
  db: Db,
  id: string,
  owner: string | null,
  status: 'done' | 'failed' | 'cancelled',
  extra: { error?: string; timings?: object } = {},
): Promise<boolean> {
  const timings = extra.timings && JSON.stringify(extra.timings);
  return (await finishing(db, id, owner, status, { error: extra.error, timings })).length === 1;
}

/** Takes the next job in the fair order for `owner`; undefined when nothing waits. */
export async function claimNext(db: Db, owner: string): Promise<JobRow | undefined> {
  const [row] = (await claimBatch(db, owner, 1)).rows;
  return row;
}

/** Stores a job's base latent, as a done job's settle does. */
export async function saveLatent(db: Db, jobId: string, latent: Latent): Promise<void> {
  const { data } = latentValues(latent);
  await db.insert(jobLatents).values({ jobId, shape: latent.shape, data }).onConflictDoNothing();
}
