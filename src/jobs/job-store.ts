// Job rows and base latents. Status moves queued → running → done | failed | cancelled, and each
// move is a conditional update, so two processes can never both finish the same job.
import { randomBytes } from 'node:crypto';
import { and, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { type JobRow, jobLatents, jobs, type NewJobRow } from '../db/schema.ts';
import type { Latent } from '../diffusion/pipeline.ts';

/** A new job id: time-ordered and short enough for a button's custom_id. */
export function newJobId(): string {
  return `${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}

const UNFINISHED = ['queued', 'running'] as const;

export async function insertJob(db: Db, row: NewJobRow): Promise<JobRow> {
  const [inserted] = await db.insert(jobs).values(row).returning();
  return inserted as JobRow;
}

export async function getJob(db: Db, id: string): Promise<JobRow | undefined> {
  const [row] = await db.select().from(jobs).where(eq(jobs.id, id));
  return row;
}

/** queued → running, only if still queued and ours. */
export async function markRunning(db: Db, id: string, owner: string): Promise<boolean> {
  const rows = await db
    .update(jobs)
    .set({
      status: 'running',
      startedAt: new Date(),
      heartbeatAt: new Date(),
      attempts: sql`${jobs.attempts} + 1`,
    })
    .where(and(eq(jobs.id, id), eq(jobs.status, 'queued'), eq(jobs.owner, owner)))
    .returning({ id: jobs.id });
  return rows.length === 1;
}

/** Ends an unfinished job we own; false if it had already ended (or moved to another owner). */
export async function finishJob(
  db: Db,
  id: string,
  owner: string,
  status: 'done' | 'failed' | 'cancelled',
  extra: { error?: string; timings?: Record<string, unknown> } = {},
): Promise<boolean> {
  const rows = await db
    .update(jobs)
    .set({ status, finishedAt: new Date(), error: extra.error ?? null, timings: extra.timings ?? null })
    .where(and(eq(jobs.id, id), inArray(jobs.status, [...UNFINISHED]), eq(jobs.owner, owner)))
    .returning({ id: jobs.id });
  return rows.length === 1;
}

export async function saveLatent(db: Db, jobId: string, latent: Latent): Promise<void> {
  const data = Buffer.from(latent.data.buffer, latent.data.byteOffset, latent.data.byteLength);
  await db.insert(jobLatents).values({ jobId, shape: latent.shape, data }).onConflictDoNothing();
}

export async function loadLatent(db: Db, jobId: string): Promise<Latent | undefined> {
  const [row] = await db.select().from(jobLatents).where(eq(jobLatents.jobId, jobId));
  if (!row) return undefined;
  // copy into an aligned buffer: a driver's Buffer may sit at any byte offset
  const data = new Float32Array(new Uint8Array(row.data).buffer);
  return { data, shape: row.shape };
}

/** Tells other processes this one is alive and still holds these jobs. */
export async function heartbeat(db: Db, owner: string): Promise<void> {
  await db
    .update(jobs)
    .set({ heartbeatAt: new Date() })
    .where(and(eq(jobs.owner, owner), inArray(jobs.status, [...UNFINISHED])));
}

/**
 * Takes over unfinished jobs whose owner has not sent a heartbeat since `staleBefore` (a dead
 * process), back to `queued` under the new owner. Atomic: a job is claimed by one process.
 */
export async function claimStale(db: Db, owner: string, staleBefore: Date): Promise<JobRow[]> {
  return db
    .update(jobs)
    .set({ owner, status: 'queued', heartbeatAt: new Date() })
    .where(
      and(
        inArray(jobs.status, [...UNFINISHED]),
        or(isNull(jobs.heartbeatAt), lt(jobs.heartbeatAt, staleBefore)),
        or(isNull(jobs.owner), sql`${jobs.owner} <> ${owner}`),
      ),
    )
    .returning();
}
