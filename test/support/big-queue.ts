// A queue the size of a busy day, written in a few statements: `queued` waiting jobs from
// `users` users (user u{i % users}, created 1 ms apart, oldest first), and `finished` done jobs
// of the same users, all but `recent` of them finished before the oldest waiting job was queued
// (those `recent` ones are of the first quarter of the users only: their turns come later).
import { sql } from 'drizzle-orm';
import type { Db } from '../../src/db/client.ts';
import { DEFAULT_REQUEST } from '../../src/diffusion/request.ts';

export interface BigQueue {
  queued: number;
  finished: number;
  /** Finished jobs served while the oldest waiting job has waited (they raise their users' turns). */
  recent: number;
  users: number;
}

export async function fillQueue(db: Db, q: BigQueue): Promise<void> {
  const request = JSON.stringify({ ...DEFAULT_REQUEST, prompt: 'big queue', seed: 1 });
  // the waiting jobs were queued in the last minute; history before that, `recent` during it
  await db.execute(sql`
    insert into jobs (id, kind, guild_id, channel_id, user_id, request, denoises, seed, cost,
                      status, owner, created_at, started_at, finished_at)
    select 'f' || lpad(i::text, 7, '0'), 'imagine', 'g', 'c',
           'u' || (i % case when i < ${q.recent} then greatest(${q.users} / 4, 1) else ${q.users} end),
           ${request}::jsonb, '[0.6]'::jsonb, 1, 1, 'done', 'w',
           t - interval '1 second', t - interval '500 ms', t
    from (
      select i, case when i < ${q.recent}
                     then now() - interval '30 seconds' + i * interval '1 ms'
                     else now() - interval '1 day' + i * interval '1 ms' end as t
      from generate_series(0, ${q.finished - 1}) i
    ) f`);
  await db.execute(sql`
    insert into jobs (id, kind, guild_id, channel_id, user_id, request, denoises, seed, cost, status, created_at)
    select 'q' || lpad(i::text, 7, '0'), 'imagine', 'g', 'c', 'u' || (i % ${q.users}),
           ${request}::jsonb, '[0.6]'::jsonb, 1, 1, 'queued',
           now() - interval '60 seconds' + i * interval '1 ms'
    from generate_series(0, ${q.queued - 1}) i`);
  await db.execute(sql`analyze jobs`);
}
