// Compiled statements (src/db/compiled.ts): the SQL is written once, each call runs with its own
// values, on the database or the transaction it is given, and returns rows mapped as drizzle's
// builders map them.
import { getTableColumns, sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { type Db, inTransaction, rowsOf } from '../../src/db/client.ts';
import { compiled } from '../../src/db/compiled.ts';
import { type JobRow, jobs, usageLedger } from '../../src/db/schema.ts';
import { DEFAULT_REQUEST, type GenerationRequest } from '../../src/diffusion/request.ts';
import { finishing } from '../../src/jobs/job-store.ts';
import { quotaDay } from '../../src/jobs/quota-day.ts';
import { recordJob } from '../../src/jobs/recording.ts';
import { DATABASE_KINDS, freshDatabase } from '../support/databases.ts';

type NewJob = { id: string; userId: string; request: GenerationRequest; cost: number };

function compiledInsert() {
  let builds = 0;
  const insert = compiled<NewJob, JobRow>((slot, db) => {
    builds++;
    return db
      .insert(jobs)
      .values({
        id: slot.id,
        kind: 'imagine',
        guildId: 'g',
        channelId: 'c',
        userId: slot.userId,
        request: slot.request,
        denoises: [0.5],
        seed: 1,
        cost: slot.cost,
      })
      .returning();
  }, getTableColumns(jobs));
  return { insert, builds: () => builds };
}

const job = (id: string, seed: number): NewJob => ({
  id,
  userId: `user-${id}`,
  request: { ...DEFAULT_REQUEST, prompt: `a prompt for ${id} with 'quotes' and \\ "escapes"`, seed },
  cost: seed / 4,
});

describe.each(DATABASE_KINDS)('a compiled statement on %s', (kind) => {
  let done: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await done?.();
    done = undefined;
  });

  async function open(): Promise<Db> {
    const t = await freshDatabase(kind);
    done = () => t.destroy();
    return t.db;
  }

  it('is built once, and each call writes its own values and returns its row as a builder does', async () => {
    const db = await open();
    const { insert, builds } = compiledInsert();
    const rows = [];
    for (const [i, id] of ['a', 'b', 'c'].entries()) rows.push(...(await insert(db, job(id, i + 1))));
    expect(builds()).toBe(1);
    expect(rows.map((r) => [r.id, r.userId, r.cost, r.request.seed, r.status, r.attempts])).toEqual([
      ['a', 'user-a', 0.25, 1, 'queued', 0],
      ['b', 'user-b', 0.5, 2, 'queued', 0],
      ['c', 'user-c', 0.75, 3, 'queued', 0],
    ]);
    // mapped by the columns: a Date, the jsonb request as an object, as the builder returns them
    expect(rows[0]?.createdAt).toBeInstanceOf(Date);
    expect(rows[1]?.request).toEqual(job('b', 2).request);
    const stored = await db.select().from(jobs).orderBy(jobs.id);
    expect(stored).toEqual(rows);
  });

  it('runs in the transaction it is given: rolled back with it, seen inside it', async () => {
    const db = await open();
    const { insert } = compiledInsert();
    await expect(
      inTransaction(db, async (tx) => {
        await insert(tx, job('x', 1));
        const inside = await tx.select({ id: jobs.id }).from(jobs);
        expect(inside).toEqual([{ id: 'x' }]);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await db.select().from(jobs)).toEqual([]);
    await inTransaction(db, (tx) => insert(tx, job('y', 2)));
    expect(await db.select({ id: jobs.id }).from(jobs)).toEqual([{ id: 'y' }]);
  });

  it('records a job whose reservation an earlier attempt wrote: the job row alone, charged once', async () => {
    const db = await open();
    const input = {
      kind: 'imagine' as const,
      guildId: 'g',
      channelId: 'c',
      userId: 'u',
      roleIds: ['r1'],
      request: job('r', 3).request,
      interaction: { token: 'tok', expiresAt: new Date('2026-11-26T18:30:00.123Z') },
    };
    const quota = { dailyUnits: 10, resetHourUtc: 0 };
    const limits = { perUser: 5, queueMax: 20 };
    const first = { id: 'first', input, denoises: [0.5], cost: 4 };
    const [row, charged] = await recordJob(db, first, quota, limits);
    expect([row.id, row.status, row.owner, row.roleIds, row.interactionExpiresAt?.toISOString()]).toEqual([
      'first',
      'queued',
      null,
      ['r1'],
      '2026-11-26T18:30:00.123Z',
    ]);
    expect(charged.used).toBe(4);
    // the reservation of 'again' is there already (an attempt whose answer came too late)
    await db.insert(usageLedger).values({
      guildId: 'g',
      userId: 'u',
      jobId: 'again',
      kind: 'reserve',
      units: 4,
      quotaDay: quotaDay(new Date(), 0),
      idempotencyKey: 'again:reserve',
    });
    const [again, usage] = await recordJob(db, { ...first, id: 'again' }, quota, limits);
    expect([again.id, again.status, usage.used]).toEqual(['again', 'queued', 8]);
    const ledger = await db.select().from(usageLedger).orderBy(usageLedger.id);
    expect(ledger.map((r) => [r.idempotencyKey, r.units])).toEqual([
      ['first:reserve', 4],
      ['again:reserve', 4],
    ]);
  });

  it('writes SQL NULL for a null through a raw slot, and JSON text as jsonb', async () => {
    const db = await open();
    const { insert } = compiledInsert();
    await insert(db, job('n', 1));
    await insert(db, job('t', 2));
    const finish = compiled<{
      id: string;
      status: 'failed' | 'done';
      error: string | null;
      timings: string | null;
    }>((slot, d) => finishing(d, slot.id, null, slot.status, slot));
    expect(await finish(db, { id: 'n', status: 'failed', error: null, timings: null })).toEqual([
      { id: 'n' },
    ]);
    await finish(db, { id: 't', status: 'done', error: 'none', timings: JSON.stringify({ baseMs: 12 }) });
    // ended already: no row
    expect(await finish(db, { id: 't', status: 'done', error: null, timings: null })).toEqual([]);
    const rows = rowsOf<{ id: string; no_error: boolean; no_timings: boolean; timings: unknown }>(
      await db.execute(
        sql`select id, error is null as no_error, timings is null as no_timings, timings from jobs order by id`,
      ),
    );
    expect(rows).toEqual([
      { id: 'n', no_error: true, no_timings: true, timings: null },
      { id: 't', no_error: false, no_timings: false, timings: { baseMs: 12 } },
    ]);
  });
});

describe('a compiled statement’s slots', () => {
  it('cannot be spread: each is named where it goes', async () => {
    const spread = compiled<{ id: string }>((slot) => sql`select ${{ ...slot }.id}`);
    await expect(spread(undefined as unknown as Db, { id: 'a' })).rejects.toThrow(
      'a compiled statement names each slot it uses',
    );
  });
});
