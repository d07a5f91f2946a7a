// The shared queue at the size of a busy day (20 000 waiting jobs from 500 users, 50 000 finished,
// 1 000 of them while the oldest waiting job waited), on both databases: the positions, one job's
// position and the claims all follow the fair order, worked out here from the rows alone.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../src/db/client.ts';
import { claimBatch, positionOf, queueState } from '../../src/jobs/pg-queue.ts';
import { fillQueue } from '../support/big-queue.ts';
import { DATABASE_KINDS, freshDatabase, type TestDatabase } from '../support/databases.ts';
import { claimNext, finishJob } from '../support/job-rows.ts';

interface Row {
  id: string;
  user_id: string;
  status: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** The order as pg-queue.ts documents it, from every row. */
async function expectedOrder(t: TestDatabase): Promise<string[]> {
  const result = await t.db.execute(sql`
    select id, user_id, status::text as status, created_at::text as created_at,
           started_at::text as started_at, finished_at::text as finished_at,
           extract(epoch from created_at) as c, extract(epoch from finished_at) as f
    from jobs`);
  const rows = rowsOf<Row & { c: string | number; f: string | number | null }>(result);
  const queued = rows
    .filter((r) => r.status === 'queued')
    .map((r) => ({ ...r, c: Number(r.c) }))
    .sort((a, b) => a.c - b.c || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const oldest = queued[0]?.c ?? Number.POSITIVE_INFINITY;
  const served = new Map<string, number>();
  for (const r of rows) {
    const ran = r.status === 'running' || (r.started_at !== null && r.f !== null && Number(r.f) >= oldest);
    if (ran) served.set(r.user_id, (served.get(r.user_id) ?? 0) + 1);
  }
  const rank = new Map<string, number>();
  const turns = queued.map((r, i) => {
    const k = (rank.get(r.user_id) ?? 0) + 1;
    rank.set(r.user_id, k);
    return { id: r.id, i, turn: k + (served.get(r.user_id) ?? 0) };
  });
  return turns.sort((a, b) => a.turn - b.turn || a.i - b.i).map((x) => x.id);
}

const byPosition = (positions: Map<string, number>) =>
  [...positions].sort((a, b) => a[1] - b[1]).map(([id]) => id);

describe.each(DATABASE_KINDS)('a queue of 20 000 waiting and 50 000 finished jobs on %s', (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await freshDatabase(kind);
    await fillQueue(t.db, { queued: 20_000, finished: 50_000, recent: 1_000, users: 500 });
  }, 120_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it('positions, one job at a time and all at once, are the fair order', async () => {
    const expected = await expectedOrder(t);
    const state = await queueState(t.db);
    expect(state.waiting).toBe(20_000);
    expect(byPosition(state.positions)).toEqual(expected);
    for (const i of [0, 1, 499, 500, 501, 7_777, 19_998, 19_999]) {
      const id = expected[i] as string;
      expect([id, await positionOf(t.db, id)]).toEqual([id, { position: i + 1, waiting: 20_000 }]);
    }
  }, 120_000);

  it('claims take the jobs in that order, one by one, in batches and side by side, and positions stay the order', async () => {
    const taken: string[] = [];
    let expected = await expectedOrder(t);
    // one by one, finishing every other job (served counts move)
    for (let i = 0; i < 6; i++) {
      const row = await claimNext(t.db, 'w1');
      expect(row?.id).toBe(expected[0]);
      expect(row).toMatchObject({ status: 'running', owner: 'w1', attempts: 1 });
      taken.push(row?.id as string);
      if (i % 2 === 0) await finishJob(t.db, row?.id as string, 'w1', 'done');
      expected = await expectedOrder(t);
    }
    // a batch is the next jobs, in order
    const { rows: batch, more } = await claimBatch(t.db, 'w2', 5);
    expect(more).toBe(true);
    expect(batch.map((r) => r.id)).toEqual(expected.slice(0, 5));
    taken.push(...batch.map((r) => r.id));
    // side by side: never the same job, and together the next ones
    expected = await expectedOrder(t);
    const side = await Promise.all(['a', 'b', 'c', 'd'].map((w) => claimBatch(t.db, w, 2)));
    const ids = side.flatMap((c) => c.rows.map((r) => r.id));
    expect(new Set(ids).size).toBe(8);
    expect([...ids].sort()).toEqual(expected.slice(0, 8).sort());
    taken.push(...ids);
    expect(new Set(taken).size).toBe(taken.length);
    // a position read now is still the order jobs start in
    const state = await queueState(t.db);
    expect(byPosition(state.positions)).toEqual(await expectedOrder(t));
    expect(state.running).toBe(taken.length - 3);
  }, 120_000);
});
