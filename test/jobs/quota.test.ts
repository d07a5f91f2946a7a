import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Db, inTransaction, rowsOf } from '../../src/db/client.ts';
import { usageLedger } from '../../src/db/schema.ts';
import { DEFAULT_REQUEST } from '../../src/diffusion/request.ts';
import { jobCost } from '../../src/jobs/cost.ts';
import {
  lockKeyOf,
  reservation,
  resetUsage,
  setBlocked,
  setDailyUnits,
  settlement,
  userLock,
} from '../../src/jobs/quota.ts';
import { nextReset, quotaDay } from '../../src/jobs/quota-day.ts';
import { type QuotaScope, usage } from '../../src/jobs/quota-standing.ts';
import { UserError } from '../../src/user-error.ts';
import { DATABASE_KINDS, freshDatabase, type TestDatabase } from '../support/databases.ts';

/** Settles a reservation (commit or refund) under the user's lock, once only, as a job's end does. */
async function settle(
  tx: Db,
  scope: QuotaScope,
  jobId: string,
  outcome: 'commit' | 'refund',
): Promise<boolean> {
  await tx.execute(sql`select ${userLock(lockKeyOf(scope))}`);
  return rowsOf(await tx.execute(settlement(scope, jobId, outcome, sql`true`))).length === 1;
}

const SETTINGS = { dailyUnits: 10, resetHourUtc: 6 };

describe('job cost', () => {
  it('is pixels × steps of both passes over a 512×512, 30-step image', () => {
    const req = { ...DEFAULT_REQUEST, prompt: 'x', seed: 1 };
    // 512² · 20 + 1024² · 20 = 20/30 + 80/30
    expect(jobCost('imagine', req, 1)).toBe(3.33);
    expect(jobCost('imagine', { ...req, steps: 30, hiresScale: 1, hiresSteps: 0 }, 1)).toBe(2);
    expect(jobCost('imagine', req, 3)).toBe(8.67);
    expect(jobCost('upscale', { ...req, hiresSteps: 15 }, 1)).toBe(2);
  });
});

describe('quota day', () => {
  it('starts at the configured UTC hour', () => {
    expect(quotaDay(new Date('2026-11-25T05:59:00Z'), 6)).toBe('2026-11-24');
    expect(quotaDay(new Date('2026-11-25T06:00:00Z'), 6)).toBe('2026-11-25');
    expect(nextReset(new Date('2026-11-25T05:59:00Z'), 6).toISOString()).toBe('2026-11-25T06:00:00.000Z');
    expect(nextReset(new Date('2026-11-25T23:00:00Z'), 0).toISOString()).toBe('2026-11-26T00:00:00.000Z');
  });
});

describe.each(DATABASE_KINDS)('quotas on %s', (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await freshDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  /** A reservation and its ledger row alone, as recordJob writes it beside the job row. */
  const reserveJob = (scope: QuotaScope, jobId: string, cost: number, now?: Date) =>
    inTransaction(t.db, async (tx) => {
      const { usage, entry } = await reservation(tx, scope, { jobId, cost }, SETTINGS, now);
      if (entry) await tx.insert(usageLedger).values(entry);
      return usage;
    });
  const settleJob = (scope: QuotaScope, jobId: string, outcome: 'commit' | 'refund') =>
    inTransaction(t.db, (tx) => settle(tx, scope, jobId, outcome));

  it('50 concurrent requests against a budget that fits 7 accept exactly 7', async () => {
    const scope = { guildId: 'g-race', userId: 'u1' };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => reserveJob(scope, `race-${i}`, 1.4)),
    );
    const accepted = outcomes.filter((o) => o.status === 'fulfilled').length;
    expect(accepted).toBe(7);
    for (const o of outcomes) {
      if (o.status === 'rejected') expect((o.reason as UserError).code).toBe('quota-exhausted');
    }
    expect((await usage(t.db, scope, SETTINGS)).used).toBe(9.8);
  });

  it('refund returns the units once; commit keeps them; neither twice nor both', async () => {
    const scope = { guildId: 'g-settle', userId: 'u1' };
    await reserveJob(scope, 'a', 4);
    await reserveJob(scope, 'b', 4);
    expect(await settleJob(scope, 'a', 'refund')).toBe(true);
    expect(await settleJob(scope, 'a', 'refund')).toBe(false);
    expect(await settleJob(scope, 'a', 'commit')).toBe(false);
    expect(await settleJob(scope, 'b', 'commit')).toBe(true);
    expect(await settleJob(scope, 'b', 'refund')).toBe(false);
    expect(await settleJob(scope, 'never-reserved', 'refund')).toBe(false);
    expect((await usage(t.db, scope, SETTINGS)).used).toBe(4);
  });

  it('reserving the same job twice charges once', async () => {
    const scope = { guildId: 'g-idem', userId: 'u1' };
    await reserveJob(scope, 'same', 3);
    await reserveJob(scope, 'same', 3);
    expect((await usage(t.db, scope, SETTINGS)).used).toBe(3);
  });

  it('a refund counts against the day of its reservation, not today', async () => {
    const scope = { guildId: 'g-days', userId: 'u1' };
    await reserveJob(scope, 'yesterday', 6, new Date('2026-11-24T12:00:00Z'));
    await settleJob(scope, 'yesterday', 'refund');
    await reserveJob(scope, 'today', 5, new Date('2026-11-25T12:00:00Z'));
    expect((await usage(t.db, scope, SETTINGS, new Date('2026-11-25T12:00:00Z'))).used).toBe(5);
    expect((await usage(t.db, scope, SETTINGS, new Date('2026-11-24T12:00:00Z'))).used).toBe(0);
  });

  it('user override beats the most generous role, which beats the guild default', async () => {
    const g = 'g-policy';
    const member = { guildId: g, userId: 'u1', roleIds: ['r-small', 'r-big'] };
    expect((await usage(t.db, member, SETTINGS)).budget).toBe(10);
    await setDailyUnits(t.db, g, { scope: 'guild' }, 20, 'admin');
    expect((await usage(t.db, member, SETTINGS)).budget).toBe(20);
    await setDailyUnits(t.db, g, { scope: 'role', roleId: 'r-small' }, 5, 'admin');
    await setDailyUnits(t.db, g, { scope: 'role', roleId: 'r-big' }, 40, 'admin');
    expect((await usage(t.db, member, SETTINGS)).budget).toBe(40);
    await setDailyUnits(t.db, g, { scope: 'user', userId: 'u1' }, 2, 'admin');
    expect((await usage(t.db, member, SETTINGS)).budget).toBe(2);
    await setDailyUnits(t.db, g, { scope: 'user', userId: 'u1' }, 0, 'admin');
    expect((await usage(t.db, member, SETTINGS)).budget).toBe(Number.POSITIVE_INFINITY);
    // other users of the guild are untouched by u1's override
    expect((await usage(t.db, { guildId: g, userId: 'u2' }, SETTINGS)).budget).toBe(20);
  });

  it('a blocked user is refused; unblocking restores them; reset gives today back', async () => {
    const scope = { guildId: 'g-admin', userId: 'u1' };
    await reserveJob(scope, 'r1', 9);
    await settleJob(scope, 'r1', 'commit');
    await expect(reserveJob(scope, 'r2', 2)).rejects.toMatchObject({ code: 'quota-exhausted' });
    await resetUsage(t.db, scope, SETTINGS, 'admin');
    expect((await usage(t.db, scope, SETTINGS)).used).toBe(0);
    await setBlocked(t.db, 'g-admin', 'u1', true, 'admin');
    await expect(reserveJob(scope, 'r3', 1)).rejects.toMatchObject({ code: 'blocked' });
    await setBlocked(t.db, 'g-admin', 'u1', false, 'admin');
    await expect(reserveJob(scope, 'r4', 1)).resolves.toMatchObject({ used: 1, remaining: 9 });
  });

  it('reset gives back only settled usage: a refund of a job in flight cannot take usage below zero', async () => {
    // the hardening issue's case: 20 settled and 30 in flight of 50; the reset used to take 50
    // off, then the refund another 30 (−30 used, 80 left of 50)
    const scope = { guildId: 'g-reset', userId: 'u1' };
    await setDailyUnits(t.db, 'g-reset', { scope: 'guild' }, 50, 'admin');
    await reserveJob(scope, 'done-1', 20);
    await settleJob(scope, 'done-1', 'commit');
    await reserveJob(scope, 'flying', 30);
    await resetUsage(t.db, scope, SETTINGS, 'admin');
    expect(await usage(t.db, scope, SETTINGS)).toMatchObject({ used: 30, remaining: 20 });
    await settleJob(scope, 'flying', 'refund');
    expect(await usage(t.db, scope, SETTINGS)).toMatchObject({ used: 0, remaining: 50 });
    // and had it committed instead, the user would have paid for it exactly once
    await reserveJob(scope, 'flying-2', 30);
    await resetUsage(t.db, scope, SETTINGS, 'admin');
    await settleJob(scope, 'flying-2', 'commit');
    expect(await usage(t.db, scope, SETTINGS)).toMatchObject({ used: 30, remaining: 20 });
  });

  it('the refusal names the cost and what is left, as plain data for the front end', async () => {
    const scope = { guildId: 'g-msg', userId: 'u1' };
    await reserveJob(scope, 'm1', 8.5);
    const err = await reserveJob(scope, 'm2', 3.33).catch((e: unknown) => e);
    expect(UserError.is(err, 'quota-exhausted')).toBe(true);
    const e = err as UserError<'quota-exhausted'>;
    expect(e.message).toMatch(
      /^This job costs 3\.33 units and you have 1\.5 of 10 left today \(resets .+Z\)\.$/,
    );
    expect(e.message).not.toMatch(/<t:/); // no Discord markup below the front end
    expect(e.context).toMatchObject({ cost: 3.33, remaining: 1.5, budget: 10 });
    expect(e.context.resetsAt.getTime()).toBe(nextReset(new Date(), SETTINGS.resetHourUtc).getTime());
  });

  it('the ledger is append-only: an UPDATE, a DELETE and a TRUNCATE are refused', async () => {
    const before = await t.db.select().from(usageLedger);
    expect(
      before
        .filter((r) => r.guildId === 'g-settle')
        .map((r) => r.kind)
        .sort(),
    ).toEqual(['commit', 'refund', 'reserve', 'reserve']);
    // drizzle wraps the database's error; the trigger's message is its cause
    const refusal = (p: Promise<unknown>) =>
      p.then(
        () => 'allowed',
        (e: unknown) => String((e as { cause?: { message?: string } }).cause?.message),
      );
    expect(await refusal(t.db.update(usageLedger).set({ units: 0 }))).toMatch(/append-only: UPDATE refused/);
    expect(await refusal(t.db.delete(usageLedger).where(eq(usageLedger.guildId, 'g-settle')))).toMatch(
      /append-only: DELETE refused/,
    );
    expect(await refusal(t.db.execute(sql`truncate usage_ledger`))).toMatch(/append-only: TRUNCATE refused/);
    expect(await t.db.select().from(usageLedger)).toEqual(before);
  });
});
