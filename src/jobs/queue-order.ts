/**
 * The fair order's SQL, shaped to read a few index entries per claim however long the queue and
 * its history (the order itself is documented in pg-queue.ts).
 *
 * A job's turn is its rank among its user's waiting jobs plus the user's `served` count. Users
 * served while the oldest waiting job has waited are few (each is served at most about once per
 * turn of that job's user, who waits); every other waiting user's oldest job has turn 1, ahead of
 * anything else. So the head of the order comes from two small sets, never from every waiting row:
 * the oldest jobs (by age) of users not served, and the first jobs of the users served.
 */
import { type SQL, sql } from 'drizzle-orm';
import type { Value } from '../db/compiled.ts';

/**
 * CTE `served` (user_id, n): each user's jobs running now or finished since the oldest waiting
 * job was queued. Index scans only: the oldest waiting job (jobs_queued_created_id_idx), the
 * running rows (jobs_status_heartbeat_idx), and the finished ones since (jobs_finished_at_user_idx).
 */
export const SERVED = sql`
  served as (
    select user_id, count(*)::int as n from (
      select user_id from jobs where status = 'running'
      union all
      select user_id from jobs
      where started_at is not null
        and finished_at >= (select created_at from jobs where status = 'queued'
                            order by created_at, id limit 1)
    ) s
    group by user_id
  )`;

/**
 * CTEs `served` and `ahead` (id, created_at, turn): a set that holds the first `n` jobs of the
 * order, from the first n jobs of at most 2n users. Why it does: a job in the first n with turn 1
 * is one of the n oldest first-jobs of users not served; one of such a user with a higher turn
 * comes after every turn-1 job, so fewer than n of those users wait (all are taken); a served
 * user's job in the first n comes after that user's first job, so that first job is among the n
 * first of the served users' first jobs (taken). Each taken user's first n jobs are taken.
 */
export function ahead(n: Value<number>): SQL {
  return sql`
    ${SERVED},
    served_firsts as (
      select s.user_id, s.n from served s
      cross join lateral (
        select created_at, id from jobs
        where status = 'queued' and user_id = s.user_id
        order by created_at, id limit 1
      ) f
      order by 1 + s.n, f.created_at, f.id
      limit ${n}
    ),
    firsts as (
      select j.user_id from jobs j
      where j.status = 'queued'
        and j.user_id not in (select user_id from served)
        and not exists (
          select 1 from jobs o
          where o.status = 'queued' and o.user_id = j.user_id
            and (o.created_at, o.id) < (j.created_at, j.id)
        )
      order by j.created_at, j.id
      limit ${n}
    ),
    users as (
      select user_id, 0 as n from firsts
      union all
      select user_id, n from served_firsts
    ),
    ahead as (
      select q.id, q.created_at, q.rank + u.n as turn
      from users u cross join lateral (
        select id, created_at, row_number() over (order by created_at, id) as rank
        from jobs where status = 'queued' and user_id = u.user_id
        order by created_at, id
        limit ${n}
      ) q
    )`;
}

/**
 * CTEs `served` and `turns` (id, user_id, created_at, turn): every waiting job with its turn,
 * ranked along the per-user index (no sort but the final one).
 */
export const TURNS = sql`
  ${SERVED},
  turns as (
    select q.id, q.user_id, q.created_at, q.rank + coalesce(s.n, 0) as turn
    from (
      select id, user_id, created_at,
             row_number() over (partition by user_id order by created_at, id) as rank
      from jobs where status = 'queued'
    ) q
    left join served s on s.user_id = q.user_id
  )`;

/**
 * The position of waiting job `jobId` (1 = next) and how many wait, from one pass over the
 * waiting jobs (counts per user, no sort). With L = turn − served of a user, the jobs of that user
 * ahead are its first L − 1 and its L-th when that one is older than the job: it is exactly when
 * at least L of the user's jobs are older (those are its first ones).
 */
export function positionSql(jobId: Value): SQL {
  return sql`
    with ${SERVED},
    target as (
      select created_at, id, user_id from jobs where id = ${jobId} and status = 'queued'
    ),
    per_user as (
      select q.user_id, count(*) as n,
             count(*) filter (where (q.created_at, q.id) < (t.created_at, t.id)) as older
      from jobs q cross join target t
      where q.status = 'queued'
      group by q.user_id
    ),
    turn as (
      select p.older + 1 + coalesce(s.n, 0) as turn
      from target t join per_user p on p.user_id = t.user_id
      left join served s on s.user_id = t.user_id
    ),
    ranks as (
      select p.n, p.older, t.turn - coalesce(s.n, 0) as l
      from per_user p cross join turn t left join served s on s.user_id = p.user_id
    )
    select (select sum(n) from ranks) as waiting,
           1 + (select sum(least(n, greatest(l - 1, 0)) + case when l >= 1 and older >= l then 1 else 0 end)
                from ranks) as position
    from turn`;
}
