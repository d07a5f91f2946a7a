// The shared queue's own queries (src/jobs/pg-queue.ts) on both databases: the fair claim order,
// positions that are the claim order, SKIP LOCKED under concurrent claims, and a cancel request.
import { eq } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jobs } from '../../src/db/schema.ts';
import { DEFAULT_REQUEST } from '../../src/diffusion/request.ts';
import { claimStale } from '../../src/jobs/job-store.ts';
import { queueState, requestCancel } from '../../src/jobs/pg-queue.ts';
import { DATABASE_KINDS, freshDatabase, type TestDatabase } from '../support/databases.ts';
import { claimNext, finishJob, insertJob } from '../support/job-rows.ts';

describe.each(DATABASE_KINDS)('the shared queue on %s', (kind) => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await freshDatabase(kind);
  });
  afterEach(async () => {
    await t?.destroy();
  });

  /** Queues jobs one by one (created_at in this order), named user + number. */
  const queue = async (...names: string[]) => {
    for (const name of names) {
      await insertJob(t.db, {
        id: name,
        kind: 'imagine',
        guildId: 'g',
        channelId: 'c',
        userId: name.slice(0, 1),
        request: { ...DEFAULT_REQUEST, prompt: name, seed: 1 },
        denoises: [0.6],
        seed: 1,
        cost: 1,
        status: 'queued',
      });
    }
  };
  const claimAll = async (owner: string, finish: boolean) => {
    const order: string[] = [];
    for (let row = await claimNext(t.db, owner); row; row = await claimNext(t.db, owner)) {
      order.push(row.id);
      if (finish) await finishJob(t.db, row.id, owner, 'done');
    }
    return order;
  };

  it('round-robin across users: 4, 2 and 2 waiting jobs run a1 b1 c1 a2 b2 c2 a3 a4', async () => {
    await queue('a1', 'a2', 'a3', 'a4', 'b1', 'b2', 'c1', 'c2');
    const { positions, waiting, running } = await queueState(t.db);
    // positions are the order the claims take
    expect([...positions].sort((x, y) => x[1] - y[1]).map(([id]) => id)).toEqual([
      'a1',
      'b1',
      'c1',
      'a2',
      'b2',
      'c2',
      'a3',
      'a4',
    ]);
    expect([waiting, running]).toEqual([8, 0]);
    expect(await claimAll('w', true)).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'c2', 'a3', 'a4']);
  });

  it('a user being served waits behind a newcomer; a claim marks the row running, attempt 1, owned', async () => {
    await queue('a1', 'a2');
    const first = await claimNext(t.db, 'w1');
    expect(first).toMatchObject({ id: 'a1', status: 'running', owner: 'w1', attempts: 1 });
    expect(first?.startedAt).toBeInstanceOf(Date);
    await queue('b1');
    expect((await queueState(t.db)).positions).toEqual(
      new Map([
        ['b1', 1],
        ['a2', 2],
      ]),
    );
    expect((await queueState(t.db)).running).toBe(1);
    expect(await claimAll('w2', false)).toEqual(['b1', 'a2']);
    expect(await claimNext(t.db, 'w2')).toBeUndefined();
  });

  it('concurrent claims never take the same job', async () => {
    await queue(...Array.from({ length: 12 }, (_, i) => `u${i}`));
    const claims = await Promise.all(Array.from({ length: 12 }, (_, i) => claimNext(t.db, `w${i}`)));
    const ids = claims.map((r) => r?.id).filter(Boolean);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length + (await claimAll('late', false)).length).toBe(12);
  });

  it('a cancel request marks a running job only', async () => {
    await queue('a1', 'a2');
    await claimNext(t.db, 'w');
    expect(await requestCancel(t.db, 'a1')).toBe(true);
    expect(await requestCancel(t.db, 'a2')).toBe(false); // waiting: the caller ends it in the queue
    const [row] = await t.db.select().from(jobs).where(eq(jobs.id, 'a1'));
    expect(row?.cancelRequested).toBe(true);
  });

  it('a cancel asked for while a worker that then died held the job survives the requeue and the next claim', async () => {
    await queue('a1');
    await claimNext(t.db, 'dead-worker');
    expect(await requestCancel(t.db, 'a1')).toBe(true);
    // the dead worker's heartbeat goes stale; a live one puts the job back and claims it
    await t.db
      .update(jobs)
      .set({ heartbeatAt: new Date(Date.now() - 3_600_000) })
      .where(eq(jobs.id, 'a1'));
    expect((await claimStale(t.db, 'live', 30_000, [])).map((r) => [r.id, r.status])).toEqual([
      ['a1', 'queued'],
    ]);
    const claimed = await claimNext(t.db, 'live');
    // the claiming process sees the cancel before it runs anything (JobService.run ends it cancelled)
    expect([claimed?.id, claimed?.owner, claimed?.cancelRequested]).toEqual(['a1', 'live', true]);
  });
});
