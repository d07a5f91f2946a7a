// The job handle and the one gate: per-job events, timings on the row, the timeout as a signal,
// attempts, heartbeats of held jobs only, retention. Stand-in engine, both databases.
import { eq } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jobLatents, jobs } from '../../src/db/schema.ts';
import type { GenerationRequest } from '../../src/diffusion/request.ts';
import { recordDelivery } from '../../src/jobs/job-store.ts';
import type { Limiters } from '../../src/jobs/limiters.ts';
import { usage } from '../../src/jobs/quota-standing.ts';
import type { JobEvent, JobService } from '../../src/jobs/service.ts';
import { DATABASE_KINDS, freshDatabase, type TestDatabase } from '../support/databases.ts';
import {
  createTestJobService,
  smallRequest,
  type TestJobServiceOptions,
  until,
} from '../support/job-service.ts';
import { StandInEngine } from '../support/stand-in-engine.ts';

const QUOTA = { dailyUnits: 100, resetHourUtc: 0 };

describe.each(DATABASE_KINDS)('job lifecycle on %s', (kind) => {
  let t: TestDatabase;
  let guild = 0;
  let g: string;
  const started: { service: JobService; limiters: Limiters }[] = [];

  // a database per test: recovery takes over every stale job it finds, other tests' too
  beforeEach(async () => {
    t = await freshDatabase(kind);
  });
  afterEach(async () => {
    for (const s of started.splice(0)) {
      await s.service.stop();
      await s.limiters.close();
    }
    await t?.destroy();
  });

  const make = async (engine: StandInEngine, o: TestJobServiceOptions = {}) => {
    g = `guild-${++guild}`;
    const made = createTestJobService(t.db, engine, { namespace: `life-${kind}-${g}`, quota: QUOTA, ...o });
    started.push(made);
    const events: JobEvent[] = [];
    made.service.on((e) => events.push(e));
    await made.service.start();
    return { ...made, events };
  };
  const submit = (
    service: JobService,
    userId: string,
    prompt: string,
    over: Partial<GenerationRequest> = {},
  ) =>
    service.submit({
      kind: 'imagine',
      guildId: g,
      channelId: 'c',
      userId,
      request: smallRequest(prompt, over),
    });

  it('a handle streams its own job’s events only, in order, and its result is the final event', async () => {
    const engine = new StandInEngine();
    const { service } = await make(engine);
    const a = await submit(service, 'u1', 'a');
    const b = await submit(service, 'u2', 'b');
    expect([a.position, b.position]).toEqual([1, 1]); // a is taken at once; b is next
    const seenA: JobEvent[] = [];
    const iterating = (async () => {
      for await (const e of a) seenA.push(e);
    })();
    const call = await engine.nextCall();
    call.progress('base', 1, 2);
    call.progress('base', 2, 2);
    call.finish();
    await iterating; // ends by itself after the final event
    expect(seenA.map((e) => e.type)).toEqual(['queued', 'started', 'progress', 'progress', 'done']);
    expect(seenA.every((e) => e.jobId === a.jobId)).toBe(true);
    expect(seenA.filter((e) => e.type === 'progress').map((e) => e.progress.step)).toEqual([1, 2]);
    const final = await a.result;
    expect(final).toMatchObject({ type: 'done', jobId: a.jobId });
    expect(final.type === 'done' && final.usage.used).toBe(a.cost); // u1 has no other job
    // b, next in line, started; its handle saw none of a's events
    const seenB: JobEvent[] = [];
    b.subscribe((e) => seenB.push(e));
    await until(() => seenB.some((e) => e.type === 'started'));
    expect(seenB.map((e) => e.type)).toEqual(['queued', 'started']);
    expect(seenB[0]).toMatchObject({ type: 'queued', position: 1, queueLength: 1, cost: b.cost });
  });

  it('a late subscriber gets what happened so far (the latest progress only), then the rest', async () => {
    const engine = new StandInEngine();
    const { service } = await make(engine);
    const h = await submit(service, 'u1', 'late');
    const call = await engine.nextCall();
    for (let i = 1; i <= 5; i++) call.progress('base', i, 5);
    await until(() => service.watch(h.jobId) !== undefined);
    const seen: JobEvent[] = [];
    service.watch(h.jobId)?.subscribe((e) => seen.push(e));
    expect(seen.map((e) => (e.type === 'progress' ? `progress ${e.progress.step}` : e.type))).toEqual([
      'queued',
      'started',
      'progress 5',
    ]);
    call.finish();
    expect((await h.result).type).toBe('done');
    expect(seen.at(-1)?.type).toBe('done');
    await until(() => service.watch(h.jobId) === undefined); // no longer held once settled
  });

  it('the pipeline timings reach the job row and the done event', async () => {
    const engine = new StandInEngine();
    const { service } = await make(engine);
    const h = await submit(service, 'u1', 'timed');
    (await engine.nextCall()).finish();
    const final = await h.result;
    const [row] = await t.db.select().from(jobs).where(eq(jobs.id, h.jobId));
    // the stand-in engine reports 1 ms for each stage
    expect(row?.timings).toMatchObject({ baseMs: 1, hiresMs: [1], decodeMs: 1 });
    expect(row?.timings?.totalMs).toBeGreaterThanOrEqual(0);
    expect(row?.timings?.queuedMs).toBeGreaterThanOrEqual(0);
    expect(final.type === 'done' && final.timings).toEqual(row?.timings);
  });

  it('dispatch is the one gate: with two engines, two jobs run and the third waits for a slot', async () => {
    const engine = new StandInEngine({ size: 2 });
    const { service, events } = await make(engine, { perUser: 3 });
    const jobsIn = [];
    for (const p of ['one', 'two', 'three']) jobsIn.push(await submit(service, 'u1', p));
    const first = await engine.nextCall();
    await engine.nextCall();
    await until(() => events.filter((e) => e.type === 'started').length === 2);
    first.finish();
    await until(() => events.filter((e) => e.type === 'started').length === 3);
    const order = events
      .filter((e) => e.type === 'started' || e.type === 'done')
      .map((e) => `${e.type} ${e.jobId}`);
    const [one, two, three] = jobsIn.map((j) => j.jobId);
    expect(order).toEqual([`started ${one}`, `started ${two}`, `done ${one}`, `started ${three}`]);
  });

  it('a timeout fails the job at once, by its signal, but the next job waits until the engine stops', async () => {
    const engine = new StandInEngine({ ignoreAbort: true });
    const { service, events } = await make(engine, { jobTimeoutMs: 100 });
    const slow = await submit(service, 'u1', 'slow');
    const next = await submit(service, 'u2', 'next');
    const call = await engine.nextCall();
    const final = await slow.result;
    expect(final).toMatchObject({
      type: 'failed',
      reason: 'timeout',
      refunded: true,
      message: 'timed out after 0.1 s',
    });
    expect(call.options.signal?.aborted).toBe(true);
    expect((await usage(t.db, { guildId: g, userId: 'u1' }, QUOTA)).used).toBe(0);
    // the engine is still in its step: nothing else may start on it
    expect(events.some((e) => e.type === 'started' && e.jobId === next.jobId)).toBe(false);
    call.finish(); // the step ends; the engine is free
    await until(() => events.some((e) => e.type === 'started' && e.jobId === next.jobId));
    const [row] = await t.db.select().from(jobs).where(eq(jobs.id, slow.jobId));
    expect(row?.status).toBe('failed'); // the late result did not overwrite the outcome
  });

  it('a job started twice, each time under a process that died, is failed and refunded, not started again', async () => {
    const engine = new StandInEngine();
    const first = await make(engine, { staleMs: 1 });
    const firstGuild = g;
    const h = await submit(first.service, 'u1', 'poison');
    await engine.nextCall(); // attempt 1 runs…
    await first.service.stop(); // …and its process goes away
    // as if killed: a clean stop hands the job back uncounted, a dead process leaves it running
    await t.db.update(jobs).set({ status: 'running', attempts: 1 }).where(eq(jobs.id, h.jobId));
    // a successor takes it up: attempt 2, and that process goes away too
    const secondEngine = new StandInEngine();
    const second = await make(secondEngine, { staleMs: 1 });
    await until(() => second.events.some((e) => e.type === 'started' && e.jobId === h.jobId));
    expect(secondEngine.calls).toHaveLength(1);
    await second.service.stop();
    await t.db.update(jobs).set({ status: 'running', attempts: 2 }).where(eq(jobs.id, h.jobId));
    const [row2] = await t.db.select().from(jobs).where(eq(jobs.id, h.jobId));
    expect(row2).toMatchObject({ status: 'running', attempts: 2 });
    // a third process refuses to try again
    const third = await make(new StandInEngine(), { staleMs: 1 });
    await until(() => third.events.some((e) => e.jobId === h.jobId && e.type === 'failed'));
    expect(third.events.find((e) => e.jobId === h.jobId)).toMatchObject({
      type: 'failed',
      reason: 'too-many-attempts',
      refunded: true,
    });
    expect((await usage(t.db, { guildId: firstGuild, userId: 'u1' }, QUOTA)).used).toBe(0);
  });

  it('heartbeats cover only the jobs held here; a running row it let go goes back to the queue, and is taken when there is room', async () => {
    const engine = new StandInEngine();
    const { service, events } = await make(engine, { heartbeatMs: 20, staleMs: 60_000 });
    const held = await submit(service, 'u1', 'held');
    const call = await engine.nextCall();
    // a row under this process's name that it does not hold (let go during an outage)
    const longAgo = new Date(Date.now() - 3_600_000);
    const [orphan] = await t.db
      .insert(jobs)
      .values({
        id: `orphan-${g}`,
        kind: 'imagine',
        guildId: g,
        channelId: 'c',
        userId: 'u2',
        request: smallRequest('orphan'),
        denoises: [0.7],
        seed: 1,
        cost: 1,
        status: 'running',
        owner: service.instanceId,
        heartbeatAt: longAgo,
      })
      .returning();
    await new Promise((r) => setTimeout(r, 100)); // several heartbeats
    const rows = await t.db.select().from(jobs).where(eq(jobs.guildId, g));
    const beat = (id: string) => rows.find((r) => r.id === id)?.heartbeatAt?.getTime() ?? 0;
    expect(beat(held.jobId)).toBeGreaterThan(Date.now() - 1_000);
    expect(beat(orphan?.id as string)).toBe(longAgo.getTime());
    await service.recover();
    const [back] = await t.db
      .select()
      .from(jobs)
      .where(eq(jobs.id, orphan?.id as string));
    expect(back?.status).toBe('queued');
    // the engine is busy: the orphan waits, and is taken (handed to the front end) once it is free
    expect(events.some((e) => e.type === 'requeued')).toBe(false);
    call.finish();
    await until(() => events.some((e) => e.type === 'requeued' && e.jobId === orphan?.id));
  });

  it('a job another process took over while this one was frozen: not reported meanwhile, stopped at the next heartbeat', async () => {
    const engine = new StandInEngine();
    // heartbeats every 100 ms; ownership stays sure for 30 s (half the bound) after one
    const { service } = await make(engine, { heartbeatMs: 100, staleMs: 60_000 });
    const a = await submit(service, 'u1', 'a');
    await engine.nextCall();
    expect(service.mayReport(a.jobId)).toBe(true);
    // another process took the job while this one could not heartbeat (frozen, or cut off)
    await t.db
      .update(jobs)
      .set({ owner: 'the-other-worker', heartbeatAt: new Date() })
      .where(eq(jobs.id, a.jobId));
    const result = await a.result;
    expect(result.type).toBe('interrupted');
    // the row is the other process's: not settled, not refunded here
    const [row] = await t.db.select().from(jobs).where(eq(jobs.id, a.jobId));
    expect([row?.status, row?.owner]).toEqual(['running', 'the-other-worker']);
    expect((await usage(t.db, { guildId: g, userId: 'u1' }, QUOTA)).used).toBeGreaterThan(0);
  });

  it('a job running here is not reported once its last heartbeat is older than half the staleness bound', async () => {
    const engine = new StandInEngine();
    // a heartbeat far in the future: nothing confirms ownership after the start
    const { service } = await make(engine, { heartbeatMs: 60_000, staleMs: 200 });
    const a = await submit(service, 'u1', 'a');
    const call = await engine.nextCall();
    await until(() => !service.mayReport(a.jobId), 2_000);
    // a job not running here (waiting, or elsewhere) is always reported
    expect(service.mayReport('some-other-job')).toBe(true);
    call.finish();
    expect((await a.result).type).toBe('done');
  });

  it('the retention sweep deletes old latents and clears tokens that can no longer be used', async () => {
    const engine = new StandInEngine();
    const { service } = await make(engine, { retention: { latentDays: 7 } });
    const valid = { token: 'still-valid', expiresAt: new Date(Date.now() + 600_000) };
    const old = await service.submit({
      kind: 'imagine',
      guildId: g,
      channelId: 'c',
      userId: 'u1',
      request: smallRequest('old'),
      interaction: valid,
    });
    (await engine.nextCall()).finish();
    await old.result;
    const fresh = await service.submit({
      kind: 'imagine',
      guildId: g,
      channelId: 'c',
      userId: 'u1',
      request: smallRequest('fresh'),
      interaction: valid,
    });
    (await engine.nextCall()).finish();
    await fresh.result;
    const waiting = await service.submit({
      kind: 'imagine',
      guildId: g,
      channelId: 'c',
      userId: 'u2',
      request: smallRequest('waiting'),
      interaction: valid,
    });
    await engine.nextCall();
    const rowsOf = () => t.db.select().from(jobs).where(eq(jobs.guildId, g));
    const tokens = async () =>
      Object.fromEntries((await rowsOf()).map((r) => [r.request.prompt, r.interactionToken]));
    // a done job keeps its token until its result is delivered (a redraw after a crash edits its
    // reply), then it is cleared; a running one keeps its own
    expect(await tokens()).toEqual({ old: 'still-valid', fresh: 'still-valid', waiting: 'still-valid' });
    await recordDelivery(t.db, old.jobId, ['m-old']);
    await recordDelivery(t.db, fresh.jobId, ['m-fresh']);
    expect(await tokens()).toEqual({ old: null, fresh: null, waiting: 'still-valid' });
    await t.db
      .update(jobLatents)
      .set({ createdAt: new Date(Date.now() - 8 * 86_400_000) })
      .where(eq(jobLatents.jobId, old.jobId));
    await service.sweep();
    const latents = (await t.db.select().from(jobLatents)).map((l) => l.jobId);
    expect(latents).toContain(fresh.jobId);
    expect(latents).not.toContain(old.jobId);
    expect((await rowsOf()).find((r) => r.id === waiting.jobId)?.interactionToken).toBe('still-valid');
    // past its expiry the token goes, though the job is still unfinished
    await service.sweep(new Date(Date.now() + 900_000));
    expect((await rowsOf()).find((r) => r.id === waiting.jobId)?.interactionToken).toBeNull();
  });

  it('a stop ends every handle with "interrupted" and hands the jobs back for the next start at once', async () => {
    const engine = new StandInEngine();
    const { service } = await make(engine);
    const running = await submit(service, 'u1', 'r');
    const queued = await submit(service, 'u2', 'q');
    await engine.nextCall();
    await service.stop();
    expect(await running.result).toEqual({ type: 'interrupted', jobId: running.jobId });
    expect(await queued.result).toEqual({ type: 'interrupted', jobId: queued.jobId });
    // queued again, no heartbeat (nobody need wait for it to go stale), and the interrupted run
    // not counted as an attempt: a clean stop is not a crash
    const rows = await t.db.select().from(jobs).where(eq(jobs.guildId, g));
    expect(rows.map((r) => [r.status, r.heartbeatAt, r.attempts])).toEqual([
      ['queued', null, 0],
      ['queued', null, 0],
    ]);
    // the next process (default staleness, 30 s) takes them at once, one after the other
    const nextEngine = new StandInEngine();
    const next = createTestJobService(t.db, nextEngine, {
      namespace: `life-${kind}-${g}-next`,
      quota: QUOTA,
    });
    started.push(next);
    const seen: JobEvent[] = [];
    next.service.on((e) => seen.push(e));
    await next.service.start();
    const taken = () => seen.filter((e) => e.type === 'requeued').map((e) => e.jobId);
    expect(taken()).toEqual([running.jobId]);
    (await nextEngine.nextCall()).finish();
    await until(() => taken().length === 2);
    expect(taken()).toEqual([running.jobId, queued.jobId]);
  });
});
