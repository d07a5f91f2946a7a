/**
 * Admission: a per-user slot and a queue slot per job, or a UserError saying which limit was hit.
 *
 * Two gates, each checked against the limit on its own (never added together, so nothing is
 * counted twice): the Bottleneck slots, taken before anything is written, and the open jobs in
 * the database, counted as the job is recorded. The slots die with their process, while its jobs
 * stay in the database for the next one (a restart, another host) to take over holding none; only
 * the database's count still holds those, whichever processes share it.
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { compiled } from '../db/compiled.ts';
import { jobs } from '../db/schema.ts';
import { UserError } from '../user-error.ts';
import type { Limiters, Slot } from './limiters.ts';
import { lockStatement } from './quota.ts';

export interface AdmissionLimits {
  /** USER_MAX_JOBS: open jobs per member and server. */
  perUser: number;
  /** QUEUE_MAX: open jobs in all. */
  queueMax: number;
}

function userLimit(limit: number): UserError {
  return new UserError(
    'user-limit',
    `You already have ${limit} job${limit === 1 ? '' : 's'} queued or running; wait for one to finish or cancel it.`,
    { limit },
  );
}

function queueFull(waiting: number, max: number): UserError {
  return new UserError(
    'queue-full',
    `The queue is full (${waiting} jobs waiting or running). Try again in a few minutes.`,
    { waiting, max },
  );
}

export async function admitJob(limiters: Limiters, guildId: string, userId: string): Promise<Slot[]> {
  const { users, queue } = limiters;
  const user = await users.tryAcquire(`${guildId}:${userId}`);
  if (!user) throw userLimit(users.limit);
  let slot: Slot | undefined;
  try {
    slot = await queue.tryAcquire('all');
  } catch (err) {
    user.release();
    throw err;
  }
  if (!slot) {
    user.release();
    const waiting = await queue.held('all').catch(() => queue.limit);
    throw queueFull(waiting, queue.limit);
  }
  return [user, slot];
}

/** One lock for every job's admission: two submissions never both count the last free place. */
const ADMISSION_LOCK = 'admission';

/**
 * Inside the transaction that records a new job: throws the limit's UserError when the open
 * jobs already in the database leave no room for it. The lock is held to the end of that
 * transaction, so the counts stay true until the job's row is written. It is taken first, before
 * the user's quota lock (quota.ts), and no transaction holding a quota lock asks for it: no
 * deadlock.
 */
export async function admitInDatabase(
  t: Db,
  who: { guildId: string; userId: string },
  limits: AdmissionLimits,
): Promise<void> {
  // the count in a statement of its own after the lock, so its snapshot holds every job recorded
  // before it; sent with the lock, not after its answer (pipelined: one round trip)
  const [, [open]] = await Promise.all([
    lockStatement(t, { key: ADMISSION_LOCK }),
    openJobsStatement(t, who),
  ]);
  const mine = Number(open?.mine ?? 0);
  const all = Number(open?.total ?? 0);
  if (mine >= limits.perUser) throw userLimit(limits.perUser);
  if (all >= limits.queueMax) throw queueFull(all, limits.queueMax);
}

/** Open (queued or running) jobs: the member's in this server, and all. */
const openJobsStatement = compiled<
  { guildId: string; userId: string },
  { mine: string | number; total: string | number }
>(
  (slot) => sql`
    select count(*) filter (where ${jobs.guildId} = ${slot.guildId} and ${jobs.userId} = ${slot.userId}) as mine,
           count(*) as total
    from ${jobs} where ${jobs.status} in ('queued', 'running')`,
);
