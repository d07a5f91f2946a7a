// Job rows and base latents. Status moves queued → running → done | failed | cancelled, and each
// move is a conditional update, so two processes can never both finish the same job. Heartbeats
// are written and judged by the database's clock, never a bot host's: one host whose clock runs
// ahead would otherwise take every live job of the others for stale.
import { randomBytes } from 'node:crypto';
import { and, eq, gt, inArray, isNotNull, isNull, lt, not, notInArray, or, type SQL, sql } from 'drizzle-orm';
import { anyOf, type Db } from '../db/client.ts';
import type { Value } from '../db/compiled.ts';
import { type JobRow, jobLatents, jobs } from '../db/schema.ts';
import type { Latent } from '../diffusion/pipeline.ts';

/** A new job id: time-ordered and short enough for a button's custom_id. */
export function newJobId(): string {
  return `${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}

const UNFINISHED = ['queued', 'running'] as const;

export async function getJob(db: Db, id: string): Promise<JobRow | undefined> {
  const [row] = await db.select().from(jobs).where(eq(jobs.id, id));
  return row;
}

/**
 * The statement that ends an unfinished job we own (owner null: a job still waiting in the shared
 * queue, whoever queued it), unrun (one part of a bigger one), returning the job's id: none if it
 * had already ended (or moved to another owner, or was claimed). A failed or cancelled job needs
 * no interaction token any more: it is cleared (it grants a 15-minute webhook, and a job row lives
 * long after); a done one keeps it until its result is delivered (undelivered, below), so that a
 * process that redraws it after a crash still edits its reply. The heartbeat is set: from now on
 * it says the owner is alive and delivering the result.
 */
export function finishing(
  db: Db,
  id: Value,
  owner: Value | null,
  status: Value<'done' | 'failed' | 'cancelled'>,
  extra: { error?: Value<string | null>; timings?: Value<string | null> } = {},
) {
  return db
    .update(jobs)
    .set({
      status: sql`${status}`,
      // the database's clock, as created_at: the fair order compares the two
      finishedAt: sql`now()`,
      error: sql`${extra.error ?? null}`,
      // JSON text (as a jsonb column's encoder writes it), or null for none
      timings: sql`${extra.timings ?? null}::jsonb`,
      interactionToken: sql`case when ${status}::text = 'done' then ${jobs.interactionToken} end`,
      heartbeatAt: sql`now()`,
    })
    .where(and(eq(jobs.id, id), ownedUnfinished(owner)))
    .returning({ id: jobs.id });
}

/** A latent as latentFor stores it: its shape as JSON text, its values' bytes. */
export function latentValues(latent: Latent): { shape: string; data: Buffer } {
  return {
    shape: JSON.stringify(latent.shape),
    data: Buffer.from(latent.data.buffer, latent.data.byteOffset, latent.data.byteLength),
  };
}

/** The statement that stores a job's base latent (latentValues) if the job `from` (a CTE of ids) was ended here. */
export function latentFor(from: SQL, shape: Value, data: Value<Buffer>): SQL {
  return sql`
    insert into job_latents (job_id, shape, data)
    select id, ${shape}::jsonb, ${data}::bytea from ${from}
    on conflict do nothing`;
}

/**
 * A done job whose result no process has recorded as delivered (resultMessageIds): its owner is
 * delivering it, or died before it could (then recovery draws it again).
 */
const undelivered = () => and(eq(jobs.status, 'done'), isNull(jobs.resultMessageIds));

/** How long after it finished an undelivered job is still drawn again: older ones are left be. */
export const REDRAW_WITHIN_MS = 24 * 3_600_000;

/** Records where a done job's result went; its interaction token is no longer needed. */
export async function recordDelivery(db: Db, jobId: string, messageIds: string[]): Promise<void> {
  await db
    .update(jobs)
    .set({ resultMessageIds: messageIds, interactionToken: null })
    .where(eq(jobs.id, jobId));
}

const ownedUnfinished = (owner: Value | null) =>
  owner === null
    ? eq(jobs.status, 'queued')
    : and(inArray(jobs.status, [...UNFINISHED]), eq(jobs.owner, owner));

/** The status of each of these jobs that exists. */
export async function jobStatuses(
  db: Db,
  ids: readonly string[],
): Promise<{ id: string; status: JobRow['status'] }[]> {
  if (ids.length === 0) return [];
  return db.select({ id: jobs.id, status: jobs.status }).from(jobs).where(anyOf(jobs.id, ids));
}

/** Whether a job's base latent is still stored (the retention sweep deletes old ones). */
export async function hasLatent(db: Db, jobId: string): Promise<boolean> {
  const rows = await db
    .select({ jobId: jobLatents.jobId })
    .from(jobLatents)
    .where(eq(jobLatents.jobId, jobId))
    .limit(1);
  return rows.length > 0;
}

export async function loadLatent(db: Db, jobId: string): Promise<Latent | undefined> {
  const [row] = await db.select().from(jobLatents).where(eq(jobLatents.jobId, jobId));
  if (!row) return undefined;
  // copy into an aligned buffer: a driver's Buffer may sit at any byte offset
  const data = new Float32Array(new Uint8Array(row.data).buffer);
  return { data, shape: row.shape };
}

/**
 * Tells other processes this one is alive and still holds these jobs (and only these: unfinished,
 * or done and being delivered); returns
 * the ids of those another process asked to cancel (a cancel whose notification was missed).
 */
export async function heartbeat(
  db: Db,
  owner: string,
  ids: readonly string[],
): Promise<{ cancelled: string[]; lost: string[] }> {
  if (ids.length === 0) return { cancelled: [], lost: [] };
  const rows = await db
    .update(jobs)
    .set({ heartbeatAt: sql`now()` })
    .where(
      and(
        eq(jobs.owner, owner),
        anyOf(jobs.id, ids),
        or(inArray(jobs.status, [...UNFINISHED]), undelivered()),
      ),
    )
    .returning({ id: jobs.id, cancelRequested: jobs.cancelRequested });
  const ours = new Set(rows.map((r) => r.id));
  return {
    cancelled: rows.filter((r) => r.cancelRequested).map((r) => r.id),
    // another process owns it now (this one was frozen or cut off past the staleness bound), or
    // it has just been settled here
    lost: ids.filter((id) => !ours.has(id)),
  };
}

/**
 * A clean stop hands its unfinished jobs back: queued again with no heartbeat, so the next start
 * (or another process) takes them over at once instead of after the staleness bound, and an
 * interrupted run does not count as an attempt (attempts count the runs a dying process ended).
 */
export async function releaseJobs(db: Db, owner: string, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db
    .update(jobs)
    .set({
      status: 'queued',
      heartbeatAt: null,
      attempts: sql`case when ${jobs.status} = 'running' then greatest(${jobs.attempts} - 1, 0) else ${jobs.attempts} end`,
    })
    .where(and(eq(jobs.owner, owner), anyOf(jobs.id, ids), inArray(jobs.status, [...UNFINISHED])));
}

/**
 * Takes over running jobs nobody has sent a heartbeat for in the last `staleMs` (a dead
 * process, or this one when it let a job go), back to `queued` under the new owner, except the
 * ones this process holds; waiting jobs need no owner (the queue is the table). Given
 * `redrawWithinMs`, so too the done jobs whose result was never delivered and whose owner went
 * silent (it died between the end and the delivery), finished within it: queued again, to be drawn again (the same
 * images: the request and seed are kept) and delivered; they keep their finishedAt, which marks
 * them as redraws (their charge stands). Atomic: a job is claimed by one process. A claimed row's
 * `heartbeatAt` is the database's time of the claim.
 */
export async function claimStale(
  db: Db,
  owner: string,
  staleMs: number,
  held: readonly string[],
  redrawWithinMs?: number,
): Promise<JobRow[]> {
  const ms = (n: number) => sql`now() - ${Math.max(0, Math.round(n))} * interval '1 millisecond'`;
  return db
    .update(jobs)
    .set({ owner, status: 'queued', heartbeatAt: sql`now()` })
    .where(
      and(
        or(
          and(eq(jobs.status, 'running'), or(isNull(jobs.heartbeatAt), lt(jobs.heartbeatAt, ms(staleMs)))),
          // (the heartbeat's lower bound: a range of jobs_status_heartbeat_idx, not every done job)
          redrawWithinMs === undefined
            ? undefined
            : and(
                undelivered(),
                lt(jobs.heartbeatAt, ms(staleMs)),
                gt(jobs.heartbeatAt, ms(redrawWithinMs)),
                gt(jobs.finishedAt, ms(redrawWithinMs)),
                // heartbeated since it finished (finishing sets both): a row ended before redraws
                // existed stopped its heartbeat before its end, its token cleared and its
                // delivery never held; whether it went out is unknown, so it is not drawn again
                sql`${jobs.heartbeatAt} >= ${jobs.finishedAt}`,
              ),
        ),
        held.length > 0 ? sql`not ${anyOf(jobs.id, held)}` : undefined,
      ),
    )
    .returning();
}

/** Retention: deletes base latents older than `before`; returns how many. */
export async function deleteLatentsBefore(db: Db, before: Date): Promise<number> {
  const rows = await db
    .delete(jobLatents)
    .where(lt(jobLatents.createdAt, before))
    .returning({ jobId: jobLatents.jobId });
  return rows.length;
}

/**
 * Retention: clears interaction tokens that can no longer be used (expired, or of an ended job,
 * but a done one still to deliver); returns how many.
 */
export async function clearExpiredTokens(db: Db, now: Date): Promise<number> {
  const rows = await db
    .update(jobs)
    .set({ interactionToken: null })
    .where(
      and(
        isNotNull(jobs.interactionToken),
        or(
          lt(jobs.interactionExpiresAt, now),
          and(notInArray(jobs.status, [...UNFINISHED]), not(undelivered() as SQL)),
        ),
      ),
    )
    .returning({ id: jobs.id });
  return rows.length;
}
