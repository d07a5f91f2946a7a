// Statements that take a list of ids (heartbeats, hand-backs, takeovers, the gateway's poll of
// jobs running elsewhere) or of a member's roles (the quota read) are one statement whatever the
// list's length: both databases keep each statement prepared per connection, and an IN-list
// made one statement per length (a gateway polling a queue of a thousand jobs kept up to a
// thousand of them on each connection to PostgreSQL, for as long as the connection lived).
import { sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { rowsOf } from '../../src/db/client.ts';
import { claimStale, heartbeat, jobStatuses, releaseJobs } from '../../src/jobs/job-store.ts';
import { usage } from '../../src/jobs/quota-standing.ts';
import { DATABASE_KINDS, freshDatabase } from '../support/databases.ts';
import { insertJob, jobRow } from '../support/job-rows.ts';

describe.each(DATABASE_KINDS)('statements with lists on %s', (kind) => {
  let done: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await done?.();
    done = undefined;
  });

  it('are one prepared statement each, whatever the length of the list', async () => {
    // one connection: the prepared statements counted are the ones used
    const t = await freshDatabase(kind, { max: 1 });
    done = () => t.destroy();
    const { db } = t;
    const prepared = async () =>
      Number(
        rowsOf<{ n: number | string }>(
          await db.execute(sql`select count(*) as n from pg_prepared_statements`),
        )[0]?.n,
      );
    const ids = (n: number) => Array.from({ length: n }, (_, i) => `job-${i}`);
    const settings = { dailyUnits: 10, resetHourUtc: 0 };
    // every statement once, so each is prepared before the count starts
    const all = async (n: number) => {
      await heartbeat(db, 'me', ids(n));
      await releaseJobs(db, 'me', ids(n));
      await claimStale(db, 'me', 30_000, ids(n));
      await jobStatuses(db, ids(n));
      await usage(db, { guildId: 'g', userId: 'u', roleIds: ids(n - 1) }, settings);
    };
    await all(1);
    await all(2);
    const before = await prepared();
    for (let n = 3; n <= 40; n++) await all(n);
    expect(await prepared()).toBe(before);
  });

  it('finds every job of the list, whatever its id holds (the list is one array parameter)', async () => {
    const t = await freshDatabase(kind);
    done = () => t.destroy();
    // what an array literal would have to quote or escape
    const ids = ['a,b', 'a"b', 'a\\b', '{x}', '{', '}', 'NULL', ' spaced ', "o'q", 'ünï😀', '', '{"a","b"}'];
    for (const id of ids) await insertJob(t.db, jobRow(id));
    await t.db.execute(
      sql`update jobs set status = 'running', owner = 'me', heartbeat_at = now() - interval '1 hour'`,
    );
    const statuses = await jobStatuses(t.db, ids);
    expect(statuses.map((r) => r.id).sort()).toEqual([...ids].sort());
    // all but the first two held: only those two are stale and taken over
    const taken = await claimStale(t.db, 'other', 30_000, ids.slice(2));
    expect(taken.map((r) => r.id).sort()).toEqual(ids.slice(0, 2).sort());
    // the rest still ours: a heartbeat keeps them, and loses the two taken
    expect(await heartbeat(t.db, 'me', ids)).toEqual({ cancelled: [], lost: ids.slice(0, 2) });
    await releaseJobs(t.db, 'me', ids);
    const queued = rowsOf<{ n: number | string }>(
      await t.db.execute(sql`select count(*) as n from jobs where status = 'queued'`),
    );
    expect(Number(queued[0]?.n)).toBe(ids.length);
  });
});
