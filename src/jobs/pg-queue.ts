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
 * A claim mostly leaves every other job's turn as it was (the claimed job's user has one job
 * fewer waiting and one more served), so a position read now is nearly always the order jobs
 * will start in. Not quite always: a claim of the oldest waiting job moves the window's start to
 * the next oldest, and jobs served before that stop counting, so a user's turn can drop and their
 * job overtake one shown ahead of it (a hostile review found it in a few of hundreds of random
 * claims). Fairness holds; a position is then off by one for a moment.
 *
 * pg-boss and graphile-worker were considered: both keep their own job tables and claim in
 * priority/FIFO order, so fairness across users, the quota reservation and the ledger settle
 * could not share one transaction with the claim; the queue is one query over our own table.
 * That query reads a few index entries per claim however long the queue (queue-order.ts).
 */
import { getTableColumns, sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../db/client.ts';
import { compiled } from '../db/compiled.ts';
import { type JobRow, jobs } from '../db/schema.ts';
import { ahead, positionSql, TURNS } from './queue-order.ts';

/** Where processes tell each other that the queue changed or a job was cancelled. */
export const QUEUE_CHANNEL = 'hiresbot_queue';
export const CANCEL_CHANNEL = 'hiresbot_cancel';

/**
 * How many of the first jobs in the order a claim tries: more than the claims that can be in
 * flight at once (one per process: a process claims one batch at a time) plus a batch, so SKIP
 * LOCKED finds free ones; looked up by primary key.
 */
const CANDIDATES = 16;

export interface Claimed {
  /** The jobs taken, in the order. */
  rows: JobRow[];
  /** Whether more jobs waited (or were being claimed elsewhere): false, the queue was drained. */
  more: boolean;
}

/**
 * Takes up to `count` next jobs in the fair order for `owner`, in that order: queued → running,
 * attempts + 1, heartbeat and start by the database's clock. Fewer when fewer wait (or the rest
 * are being claimed by someone else this instant). One statement, however many it takes.
 */
export async function claimBatch(db: Db, owner: string, count: number): Promise<Claimed> {
  if (count <= 0) return { rows: [], more: true };
  const rows = await claimStatement(db, { owner, count, n: Math.max(CANDIDATES, count + 8) });
  return {
    rows: rows.sort((a, b) => a.ord - b.ord).map(({ ord: _o, seen: _s, ...row }) => row as JobRow),
    more: (rows[0]?.seen ?? 0) > rows.length,
  };
}

const CLAIMED = {
  ...getTableColumns(jobs),
  ord: sql<number>`picked.ord`.mapWith(Number),
  seen: sql<number>`picked.seen`.mapWith(Number),
};

/** The claim of claimBatch: the first `n` of the order are tried, `count` taken. */
const claimStatement = compiled<
  { owner: string; count: number; n: number },
  JobRow & { ord: number; seen: number }
>((slot, db) => {
  const picked = sql`(
    with ${ahead(slot.n)},
    -- materialized: looked up row by row, never rebuilt per row (a table without statistics
    -- looked one row long to the planner, which then ran this once per waiting job)
    candidates as materialized (
      select id, row_number() over (order by turn, created_at, id) as ord, count(*) over () as seen
      from ahead order by turn, created_at, id limit ${slot.n}
    )
    select j.id, c.ord, c.seen from candidates c join jobs j on j.id = c.id
    where j.status = 'queued'
    order by c.ord
    limit ${slot.count}
    for update of j skip locked
  ) picked`;
  return db
    .update(jobs)
    .set({
      status: 'running',
      owner: sql`${slot.owner}`,
      // kept: a cancel asked for while a dead worker held the job ends it here, before it runs
      startedAt: sql`now()`,
      heartbeatAt: sql`now()`,
      attempts: sql`${jobs.attempts} + 1`,
    })
    .from(picked)
    .where(sql`${jobs.id} = picked.id`)
    .returning(CLAIMED);
}, CLAIMED);

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
      with ${TURNS},
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
  const [row] = await positionStatement(db, { jobId });
  return row && { position: Number(row.position), waiting: Number(row.waiting) };
}

const positionStatement = compiled<
  { jobId: string },
  { position: string | number; waiting: string | number }
>((slot) => positionSql(slot.jobId));

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
