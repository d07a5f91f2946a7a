// The job service with a stand-in engine (test/support/stand-in-engine.ts), on both databases.
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jobs, usageLedger } from '../../src/db/schema.ts';
import { DEFAULT_REQUEST, type GenerationRequest } from '../../src/diffusion/request.ts';
import { getJob } from '../../src/jobs/job-store.ts';
import { createLimiters, type Limiters } from '../../src/jobs/limiters.ts';
import { setDailyUnits } from '../../src/jobs/quota-admin.ts';
import { usage } from '../../src/jobs/quota-standing.ts';
import { type JobEvent, JobService } from '../../src/jobs/service.ts';
import { DATABASE_KINDS, emptyQueue, freshDatabase, type TestDatabase } from '../support/databases.ts';
import { until } from '../support/job-service.ts';
import { StandInEngine } from '../support/stand-in-engine.ts';

const QUOTA = { dailyUnits: 100, resetHourUtc: 0 };
const req = (prompt: string, over: Partial<GenerationRequest> = {}): GenerationRequest => ({
  ...DEFAULT_REQUEST,
  prompt,
  seed: 1,
  ...over,
});
describe.each(DATABASE_KINDS)('job service on %s', (kind) => {
  let t: TestDatabase;
  let limiters: Limiters;
  let service: JobService;
  let engine: StandInEngine;
  let events: JobEvent[];
  let guild = 0;
  let g: string;

  beforeAll(async () => {
    t = await freshDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
  });
  const setUp = (o: { perUser?: number; queueMax?: number; timeoutMs?: number } = {}) => {
    g = `guild-${++guild}`;
    engine = new StandInEngine();
    limiters = createLimiters({
      perUser: o.perUser ?? 2,
      queueMax: o.queueMax ?? 20,
      namespace: `t-${g}`,
    });
    service = new JobService({
      db: t.db,
      engine,
      limiters,
      quota: QUOTA,
      jobTimeoutMs: o.timeoutMs ?? 60_000,
    });
    const mine: JobEvent[] = [];
    events = mine;
    service.on((e) => mine.push(e));
  };
  afterEach(async () => {
    await service?.stop();
    await limiters?.close();
    await emptyQueue(t.db);
  });
  const submit = (userId: string, prompt: string, over: Partial<GenerationRequest> = {}) =>
    service.submit({ kind: 'imagine', guildId: g, channelId: 'c', userId, request: req(prompt, over) });
  const ledger = async (userId: string) =>
    (await t.db.select().from(usageLedger).where(eq(usageLedger.userId, userId))).filter(
      (r) => r.guildId === g,
    );
  const statusOf = async (id: string) => (await t.db.select().from(jobs).where(eq(jobs.id, id)))[0]?.status;

  it('runs a job to done, charging its cost once', async () => {
    setUp();
    const { jobId, cost, position, usage: before } = await submit('u1', 'a cat');
    expect(position).toBe(1);
    expect(cost).toBe(3.33);
    expect(before).toMatchObject({ used: 3.33, remaining: 96.67 });
    (await engine.nextCall()).finish();
    await until(() => events.some((e) => e.type === 'done'));
    expect(await statusOf(jobId)).toBe('done');
    expect((await ledger('u1')).map((r) => [r.kind, r.units])).toEqual([
      ['reserve', 3.33],
      ['commit', 0],
    ]);
    expect(events.map((e) => e.type)).toEqual(['queued', 'started', 'done']);
  });

  it('the usage told with a done job has the budget of the member’s roles, as the one told at submit', async () => {
    setUp();
    await setDailyUnits(t.db, g, { scope: 'guild' }, 10, 'admin');
    await setDailyUnits(t.db, g, { scope: 'role', roleId: 'vip' }, 500, 'admin');
    const handle = await service.submit({
      kind: 'imagine',
      guildId: g,
      channelId: 'c',
      userId: 'u1',
      roleIds: ['vip'],
      request: req('a cat'),
    });
    expect(handle.usage).toMatchObject({ budget: 500, used: 3.33, remaining: 496.67 });
    (await engine.nextCall()).finish();
    await until(() => events.some((e) => e.type === 'done'));
    const done = events.find((e) => e.type === 'done');
    expect(done?.type === 'done' && done.usage).toMatchObject({ budget: 500, used: 3.33, remaining: 496.67 });
  });

  it('refuses a third job per user with a clear message and charges nothing for it', async () => {
    setUp({ perUser: 2 });
    await submit('u1', 'one');
    await submit('u1', 'two');
    await expect(submit('u1', 'three')).rejects.toMatchObject({
      code: 'user-limit',
      message: 'You already have 2 jobs queued or running; wait for one to finish or cancel it.',
    });
    expect((await ledger('u1')).length).toBe(2);
    // another user is not affected, and goes before u1's second job (u1 is being served)
    await expect(submit('u2', 'other')).resolves.toMatchObject({ position: 1 });
  });

  it('refuses a request outside the bounds before anything is charged', async () => {
    setUp();
    await expect(submit('u1', 'x', { steps: 500 })).rejects.toMatchObject({
      code: 'bad-option',
      message: 'steps must be a whole number from 1 to 150 (got 500)',
    });
    await expect(
      service.submit({
        kind: 'imagine',
        guildId: g,
        channelId: 'c',
        userId: 'u1',
        request: req('x'),
        denoises: [0.5, 1.5],
      }),
    ).rejects.toMatchObject({
      code: 'bad-option',
      message: 'denoise must be greater than 0 and at most 1 (got 1.5)',
    });
    expect(await ledger('u1')).toEqual([]);
  });

  it('refuses when the whole queue is full, saying how many are waiting', async () => {
    setUp({ queueMax: 3 });
    for (const u of ['a', 'b', 'c']) await submit(u, u);
    await expect(submit('d', 'd')).rejects.toMatchObject({
      code: 'queue-full',
      message: 'The queue is full (3 jobs waiting or running). Try again in a few minutes.',
    });
    expect(await ledger('d')).toEqual([]);
  });

  it('a user with five queued jobs delays another user’s single job by at most one', async () => {
    setUp({ perUser: 5 });
    const a = [];
    for (let i = 1; i <= 5; i++) a.push((await submit('a', `a${i}`)).jobId);
    const b = await submit('b', 'b1');
    expect(b.position).toBe(1); // a1 runs, so b1 goes before a2
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const call = await engine.nextCall();
      order.push(call.prompt);
      call.finish();
    }
    expect(order).toEqual(['a1', 'b1', 'a2', 'a3', 'a4', 'a5']);
  });

  it('tells waiting jobs when their position changes', async () => {
    setUp({ perUser: 3 });
    await submit('a', 'a1');
    const a2 = await submit('a', 'a2');
    const b1 = await submit('b', 'b1');
    // a1 runs, so b1 goes ahead of a2, which is told
    expect([a2.position, b1.position]).toEqual([1, 1]);
    const moves = () =>
      events.filter((e) => e.type === 'position').map((e) => [e.jobId, (e as { position: number }).position]);
    await until(() => moves().length === 1);
    (await engine.nextCall()).finish(); // a1 ends; b1 starts; a2 is next
    await until(() => moves().length === 2);
    expect(moves()).toEqual([
      [a2.jobId, 2],
      [a2.jobId, 1],
    ]);
  });

  it('cancels a queued job (owner or admin only) and refunds it', async () => {
    setUp({ perUser: 3 });
    await submit('u1', 'running');
    const queued = await submit('u1', 'queued');
    await expect(service.cancel(queued.jobId, { userId: 'u2', isAdmin: false })).rejects.toMatchObject({
      code: 'not-allowed',
    });
    await service.cancel(queued.jobId, { userId: 'u1', isAdmin: false });
    expect(await statusOf(queued.jobId)).toBe('cancelled');
    expect(events.find((e) => e.type === 'cancelled')).toMatchObject({ jobId: queued.jobId, refunded: true });
    await expect(service.cancel(queued.jobId, { userId: 'u1', isAdmin: false })).rejects.toMatchObject({
      code: 'already-finished',
    });
    const u = await usage(t.db, { guildId: g, userId: 'u1' }, QUOTA);
    expect(u.used).toBe(3.33);
  });

  it('cancels a running job through its signal and refunds it', async () => {
    setUp();
    const { jobId } = await submit('u1', 'long');
    const call = await engine.nextCall();
    await service.cancel(jobId, { userId: 'admin', isAdmin: true });
    await until(() => events.some((e) => e.type === 'cancelled'));
    expect(call.options.signal?.aborted).toBe(true);
    expect(await statusOf(jobId)).toBe('cancelled');
    expect((await usage(t.db, { guildId: g, userId: 'u1' }, QUOTA)).used).toBe(0);
  });

  it('fails and refunds a job that runs past the time limit', async () => {
    setUp({ timeoutMs: 150 });
    const { jobId } = await submit('u1', 'stuck');
    const call = await engine.nextCall();
    await until(() => events.some((e) => e.type === 'failed'));
    expect(events.find((e) => e.type === 'failed')).toMatchObject({ reason: 'timeout', refunded: true });
    expect(call.options.signal?.aborted).toBe(true);
    expect(await statusOf(jobId)).toBe('failed');
    expect((await ledger('u1')).reduce((s, r) => s + r.units, 0)).toBe(0);
  });

  it('fails and refunds a job the engine could not run, then runs the next', async () => {
    setUp();
    await submit('u1', 'bad');
    await submit('u2', 'good');
    (await engine.nextCall()).fail('out of memory');
    (await engine.nextCall()).finish();
    await until(() => events.some((e) => e.type === 'done'));
    expect(events.find((e) => e.type === 'failed')).toMatchObject({
      reason: 'error',
      message: 'out of memory',
      refunded: true,
    });
    expect((await usage(t.db, { guildId: g, userId: 'u1' }, QUOTA)).used).toBe(0);
    expect((await usage(t.db, { guildId: g, userId: 'u2' }, QUOTA)).used).toBe(3.33);
  });

  it('fails and refunds a job whose error message holds a NUL, which a text column cannot', async () => {
    setUp();
    const { jobId } = await submit('u1', 'bad');
    (await engine.nextCall()).fail('bad \u0000 bytes');
    await until(() => events.some((e) => e.type === 'failed'));
    expect(events.find((e) => e.type === 'failed')).toMatchObject({ reason: 'error', refunded: true });
    expect(await statusOf(jobId)).toBe('failed');
    expect((await getJob(t.db, jobId))?.error).toBe('bad \uFFFD bytes');
    expect((await usage(t.db, { guildId: g, userId: 'u1' }, QUOTA)).used).toBe(0);
  });

  it('a restart leaves running and queued jobs for the next process, which runs them', async () => {
    setUp();
    const interaction = { token: 'tok', expiresAt: new Date(Date.now() + 900_000) };
    const a = await service.submit({
      kind: 'imagine',
      guildId: g,
      channelId: 'c',
      userId: 'u1',
      request: req('a'),
      interaction,
    });
    const b = await service.submit({
      kind: 'imagine',
      guildId: g,
      channelId: 'c',
      userId: 'u2',
      request: req('b'),
      interaction,
    });
    await engine.nextCall();
    await service.stop();
    expect([await statusOf(a.jobId), await statusOf(b.jobId)]).toEqual(['queued', 'queued']); // handed back
    expect(events.some((e) => e.type === 'cancelled' || e.type === 'failed')).toBe(false);

    const next = new StandInEngine();
    const nextLimiters = createLimiters({ perUser: 2, queueMax: 20, namespace: `t-${g}-next` });
    const successor = new JobService({
      db: t.db,
      engine: next,
      limiters: nextLimiters,
      quota: QUOTA,
      jobTimeoutMs: 60_000,
      staleMs: 1,
    });
    const seen: JobEvent[] = [];
    successor.on((e) => seen.push(e));
    try {
      await new Promise((r) => setTimeout(r, 20));
      await successor.start(); // recovers at once
      // run whatever it took over until both of this test's jobs are done
      const doneHere = () => seen.filter((e) => e.type === 'done' && e.job.guildId === g).length;
      for (let finished = 0; doneHere() < 2; ) {
        (await next.nextCall()).finish();
        finished++;
        await until(() => doneHere() === 2 || next.calls.length > finished);
      }
      // (jobs other tests left unfinished in other guilds are recovered too)
      expect(
        seen
          .filter((e) => e.type === 'requeued' && e.job.guildId === g)
          .map((e) => e.jobId)
          .sort(),
      ).toEqual([a.jobId, b.jobId].sort());
      expect((await usage(t.db, { guildId: g, userId: 'u1' }, QUOTA)).used).toBe(3.33);
    } finally {
      await successor.stop();
      await nextLimiters.close();
    }
  });

  it('USER_MAX_JOBS and QUEUE_MAX hold across a restart: the jobs taken over still count', async () => {
    setUp({ perUser: 2, queueMax: 4 });
    await submit('u1', 'u1-first');
    await submit('u2', 'u2-first');
    await engine.nextCall(); // one of them runs, the other waits
    await service.stop(); // both handed back, open in the database, holding no slots now

    // a new process on the same database, with limiters that have never seen these jobs
    const next = new StandInEngine();
    const nextLimiters = createLimiters({ perUser: 2, queueMax: 4, namespace: `t-${g}-next` });
    const successor = new JobService({
      db: t.db,
      engine: next,
      limiters: nextLimiters,
      quota: QUOTA,
      jobTimeoutMs: 60_000,
    });
    const submitThere = (userId: string, prompt: string) =>
      successor.submit({ kind: 'imagine', guildId: g, channelId: 'c', userId, request: req(prompt) });
    const outcomes = async (tries: Promise<unknown>[]) =>
      (await Promise.allSettled(tries)).map((r) =>
        r.status === 'fulfilled' ? 'admitted' : (r.reason as { message: string }).message,
      );
    try {
      await successor.start();
      await next.nextCall(); // it took one over
      // u1 has 1 open job of 2: of three at once exactly one more is admitted
      expect((await outcomes([1, 2, 3].map((n) => submitThere('u1', `u1-again-${n}`)))).sort()).toEqual([
        'You already have 2 jobs queued or running; wait for one to finish or cancel it.',
        'You already have 2 jobs queued or running; wait for one to finish or cancel it.',
        'admitted',
      ]);
      // 3 open jobs of 4 in all: of two at once from a new user exactly one is admitted
      expect((await outcomes([1, 2].map((n) => submitThere('u3', `u3-${n}`)))).sort()).toEqual([
        'The queue is full (4 jobs waiting or running). Try again in a few minutes.',
        'admitted',
      ]);
      // nothing was charged for the refusals: u1 paid for 2 jobs, u3 for 1
      expect((await ledger('u1')).map((r) => r.kind)).toEqual(['reserve', 'reserve']);
      expect((await ledger('u3')).map((r) => r.kind)).toEqual(['reserve']);
      // a job that ends frees its place: u1's first, cancelled, lets u1 in again
      const rows = await t.db.select().from(jobs).where(eq(jobs.guildId, g));
      const u1First = rows.find((r) => r.request.prompt === 'u1-first')?.id as string;
      await successor.cancel(u1First, { userId: 'u1', isAdmin: false });
      await until(async () => (await statusOf(u1First)) === 'cancelled');
      expect(await outcomes([submitThere('u1', 'u1-after-cancel')])).toEqual(['admitted']);
    } finally {
      await successor.stop();
      await nextLimiters.close();
    }
  });

  it('an upscale job starts from its parent’s stored base latent', async () => {
    setUp();
    const parent = await submit('u1', 'parent', { width: 64, height: 64 });
    (await engine.nextCall()).finish();
    await until(() => events.some((e) => e.type === 'done'));
    const up = await service.submit({
      kind: 'upscale',
      guildId: g,
      channelId: 'c',
      userId: 'u2',
      request: req('parent', { width: 64, height: 64 }),
      denoises: [0.3, 0.5],
      parentJobId: parent.jobId,
    });
    expect(up.cost).toBe(0.08); // 128² · 20 · 2 over 512² · 30
    (await engine.nextCall()).finish();
    await until(() => events.filter((e) => e.type === 'done').length === 2);
    const done = events.filter((e) => e.type === 'done').at(-1);
    expect(done?.type === 'done' && done.images.upscaled.map((u) => u.denoise)).toEqual([0.3, 0.5]);
    await expect(
      service.submit({
        kind: 'upscale',
        guildId: 'elsewhere',
        channelId: 'c',
        userId: 'u2',
        request: req('x'),
        parentJobId: parent.jobId,
      }),
    ).rejects.toMatchObject({ code: 'not-found' });
  });
});
