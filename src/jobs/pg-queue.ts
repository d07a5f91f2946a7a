/**
 * The shared queue is the jobs table: a `queued` row is a queue entry, whichever process wrote
 * it, and any process with an engine claims the next one with FOR UPDATE SKIP LOCKED, so two
 * workers never take the same job and neither waits for the other's claim.
 *
 * The fair order, without state outside the rows: a user's waiting jobs are numbered 1, 2, …
 * (oldest first), and each number is raised by the jobs that user was already served while the
 * oldest waiting job has been waiting (running now, or finished since it was queued). The lowest
 * turn goes next, the oldest job first among equals. Three users with 4, 2 and 2 waiting jobs
 * are served a1 b1 c1 a2 b2 c2 a3 a4; a user with many jobs delays another's by at most one.
 * A claim leaves every other job's turn as it was (the claimed job's user has one job fewer
 * waiting and one more served), so a position read now is the order jobs will start in.
 *
 * pg-boss and graphile-worker were considered: both keep their own job tables and claim in
 * priority/FIFO order, so fairness across users, the quota reservation and the ledger settle
 * could not share one transaction with the claim; the queue is one query over our own table.
 */
import { eq, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { type JobRow, jobs } from '../db/schema.ts';

/** Where processes tell each other that the queue changed or a job was cancelled. */
export const QUEUE_CHANNEL = 'hiresbot_queue';
export const CANCEL_CHANNEL = 'hiresbot_cancel';

/** The queued jobs with their turn, as CTEs `queued` and `turns` (id, user_id, created_at, turn). */
const TURNS = sql`
  with queued as (
    select id, user_id, created_at,
           row_number() over (partition by user_id order by created_at, id) as rank
    from jobs where status = 'queued'
  ),
  served as (
    -- two index scans (status, finished_at), never the whole history
    select user_id, count(*) as n from (
      select user_id from jobs where status = 'running'
      union all
      select user_id from jobs
      where finished_at >= (select min(created_at) from queued) and started_at is not null
    ) s
    group by user_id
  ),
  turns as (
    select q.id, q.user_id, q.created_at, q.rank + coalesce(s.n, 0) as turn
    from queued q left join served s on s.user_id = q.user_id
  )`;

/**
 * How many of the first jobs in the order a claim tries: more than the claims that can be in
 * flight at once (one per engine slot), so SKIP LOCKED finds one free; looked up by primary key.
 */
const CANDIDATES = 64;

/** postgres-js gives the rows, PGlite a result holding them. */
function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

/**
 * Takes the next job in the fair order for `owner`: queued → running, attempts + 1, heartbeat
 * and start by the database's clock. Undefined when nothing waits (or every waiting job is being
 * claimed by someone else this instant).
 */
export async function claimNext(db: Db, owner: string): Promise<JobRow | undefined> {
  const next: SQL = sql`(
    ${TURNS},
    candidates as (
      select id, row_number() over (order by turn, created_at, id) as ord
      from turns order by turn, created_at, id limit ${CANDIDATES}
    )
    select j.id from candidates c join jobs j on j.id = c.id
    where j.status = 'queued'
    order by c.ord
    limit 1
    for update of j skip locked
  )`;
  const [row] = await db
    .update(jobs)
    .set({
      status: 'running',
      owner,
      // kept: a cancel asked for while a dead worker held the job ends it here, before it runs
      startedAt: sql`now()`,
      heartbeatAt: sql`now()`,
      attempts: sql`${jobs.attempts} + 1`,
    })
    .where(eq(jobs.id, next))
    .returning();
  return row;
}

export interface QueueState {
  /** Position of every waiting job (1 = next). */
  positions: Map<string, number>;
  /** Jobs waiting. */
  waiting: number;
  /** Jobs running. */
  running: number;
}

/** Where every waiting job stands, read in one statement (one snapshot). */
export async function queueState(db: Db): Promise<QueueState> {
  const rows = rowsOf<{ id: string | null; position: string | number | null; running: string | number }>(
    await db.execute(sql`
      ${TURNS},
      ordered as (
        select id, row_number() over (order by turn, created_at, id) as position from turns
      )
      select o.id, o.position, r.running
      from (select count(*) as running from jobs where status = 'running') r
      left join ordered o on true`),
  );
  const positions = new Map<string, number>();
  for (const r of rows) if (r.id !== null) positions.set(r.id, Number(r.position));
  return { positions, waiting: positions.size, running: Number(rows[0]?.running ?? 0) };
}

/** Where one waiting job stands (1 = next), and how many wait; undefined when it waits no more. */
export async function positionOf(
  db: Db,
  jobId: string,
): Promise<{ position: number; waiting: number } | undefined> {
  const [row] = rowsOf<{ position: string | number; waiting: string | number }>(
    await db.execute(sql`
      ${TURNS},
      ordered as (
        select id, row_number() over (order by turn, created_at, id) as position,
               count(*) over () as waiting
        from turns
      )
      select position, waiting from ordered where id = ${jobId}`),
  );
  return row && { position: Number(row.position), waiting: Number(row.waiting) };
}

/** Tells every listening process (after the transaction commits, when `db` is one). */
export async function notify(db: Db, channel: string, payload: string): Promise<void> {
  await db.execute(sql`select pg_notify(${channel}, ${payload})`);
}

/**
 * Asks the process running a job to stop it; true if it is running (somewhere). That process
 * hears it at once (CANCEL_CHANNEL) or with its next heartbeat, and stops between steps.
 */
export async function requestCancel(db: Db, jobId: string): Promise<boolean> {
  const rows = await db
    .update(jobs)
    .set({ cancelRequested: true })
    .where(sql`${jobs.id} = ${jobId} and ${jobs.status} = 'running'`)
    .returning({ id: jobs.id });
  if (rows.length === 0) return false;
  await notify(db, CANCEL_CHANNEL, jobId);
  return true;
}
