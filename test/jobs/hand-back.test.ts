// A job that ran goes back to the queue when its process stops or dies; the process that puts it
// back tells its hand-back listeners first (the front end edits the member's reply): on a clean
// stop while the row still says running there, so that nobody claims it before; on a takeover
// before the taking process claims it. Jobs that only waited are not told. Stand-in engine.
import { eq, sql } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { type JobRow, jobs } from '../../src/db/schema.ts';
import { createBackend } from '../../src/discord/backend.ts';
import type { HandedBackJob } from '../../src/discord/services.ts';
import type { Limiters } from '../../src/jobs/limiters.ts';
import type { JobService } from '../../src/jobs/service.ts';
import { DATABASE_KINDS, freshDatabase, type TestDatabase } from '../support/databases.ts';
import { createTestJobService, smallRequest, until } from '../support/job-service.ts';
import { StandInEngine } from '../support/stand-in-engine.ts';

const interaction = (token: string) => ({ token, expiresAt: new Date(Date.now() + 600_000) });

describe.each(DATABASE_KINDS)('jobs handed back on %s', (kind) => {
  let t: TestDatabase;
  let made: { service: JobService; limiters: Limiters }[] = [];

  beforeEach(async () => {
    t = await freshDatabase(kind);
  });
  afterEach(async () => {
    for (const m of made) {
      await m.service.stop();
      await m.limiters.close();
    }
    made = [];
    await t?.destroy();
  });

  /** A process: heartbeats far apart, so that only what the test does moves a job. */
  const make = (name: string, o: { size?: number; concurrency?: number } = {}) => {
    const engine = new StandInEngine({ size: o.size ?? 1 });
    const m = createTestJobService(t.db, engine, {
      ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
      instanceId: name,
      namespace: `hand-back-${name}-${kind}-${Date.now()}`,
      heartbeatMs: 60_000,
      staleMs: 30_000,
    });
    made.push(m);
    return { ...m, engine };
  };
  const submit = (service: JobService, userId: string, prompt: string) =>
    service.submit({
      kind: 'imagine',
      guildId: 'g',
      channelId: 'c',
      userId,
      request: smallRequest(prompt),
      interaction: interaction(`token-${prompt}`),
    });
  const rowOf = async (id: string): Promise<JobRow> => {
    const [row] = await t.db.select().from(jobs).where(eq(jobs.id, id));
    return row as JobRow;
  };
  /** What a listener saw: the job it was told of, and its row in the database at that moment. */
  const listen = (service: JobService) => {
    const heard: { id: string; token: string | null; status: string; owner: string | null }[] = [];
    service.onHandedBack(async (row) => {
      const now = await rowOf(row.id);
      heard.push({ id: row.id, token: row.interactionToken, status: now.status, owner: now.owner });
    });
    return heard;
  };

  it('a stop tells of the job that ran here, before it hands it back, and not of the one that waited', async () => {
    const a = make('a');
    await a.service.start();
    const ran = await submit(a.service, 'u1', 'ran');
    const waited = await submit(a.service, 'u2', 'waited');
    (await a.engine.nextCall()).progress('base', 3, 10);
    const heard = listen(a.service);
    await a.service.stop();
    // told while the row still said running here: no other process could have claimed it yet
    expect(heard).toEqual([{ id: ran.jobId, token: 'token-ran', status: 'running', owner: 'a' }]);
    expect(await ran.result).toEqual({ type: 'interrupted', jobId: ran.jobId });
    expect(await waited.result).toEqual({ type: 'interrupted', jobId: waited.jobId });
    // then both handed back, the run not counted as an attempt
    expect(await rowOf(ran.jobId)).toMatchObject({ status: 'queued', attempts: 0, heartbeatAt: null });
    expect(await rowOf(waited.jobId)).toMatchObject({ status: 'queued' });
  });

  it('a listener that never answers holds a stop a few seconds at most', async () => {
    const a = make('a');
    await a.service.start();
    const ran = await submit(a.service, 'u1', 'slow');
    await a.engine.nextCall();
    let told = 0;
    a.service.onHandedBack(() => {
      told++;
      return new Promise<void>(() => {}); // Discord does not answer
    });
    const before = Date.now();
    await a.service.stop();
    expect(Date.now() - before).toBeLessThan(8_000);
    expect(told).toBe(1);
    expect(await rowOf(ran.jobId)).toMatchObject({ status: 'queued' });
  });

  it('a job taken over from a dead process is told before the taking process claims it', async () => {
    const a = make('a');
    await a.service.start();
    const h = await submit(a.service, 'u1', 'orphan');
    const first = await a.engine.nextCall();
    // a stopped sending heartbeats (it died, as far as the database can tell)
    await t.db.update(jobs).set({ heartbeatAt: sql`now() - interval '1 hour'` }).where(eq(jobs.id, h.jobId));
    const b = make('b');
    const heard = listen(b.service);
    let callsWhenTold = -1;
    b.service.onHandedBack(async () => {
      callsWhenTold = b.engine.calls.length;
    });
    await b.service.start(); // recovers at start
    expect(heard).toEqual([{ id: h.jobId, token: 'token-orphan', status: 'queued', owner: 'b' }]);
    expect(callsWhenTold).toBe(0);
    // then b claims and runs it
    const second = await b.engine.nextCall();
    expect(second.prompt).toBe('orphan');
    first.finish(); // a's run ends after all: its result no longer counts
    expect(await h.result).toEqual({ type: 'interrupted', jobId: h.jobId });
    second.finish();
    expect(await b.service.watch(h.jobId)?.result).toMatchObject({ type: 'done' });
    expect(heard).toHaveLength(1);
  });

  it('jobs taken over as a gateway starts, before its bot listens, are told to it then if they still wait', async () => {
    const a = make('a', { size: 2 });
    await a.service.start();
    const one = await submit(a.service, 'u1', 'one');
    const two = await submit(a.service, 'u2', 'two');
    await a.engine.nextCall();
    await a.engine.nextCall();
    await t.db.update(jobs).set({ heartbeatAt: sql`now() - interval '1 hour'` });
    // a gateway (runs no job): its front end is made before its jobs start, as src/services.ts does
    const gw = make('gw', { concurrency: 0 });
    const backend = createBackend({
      config: loadConfig({}),
      db: t.db,
      jobs: gw.service,
      quota: { dailyUnits: 100, resetHourUtc: 0 },
      model: () => ({ name: 'tiny', hash: '0123456789' }),
    });
    await gw.service.start(); // takes both over: back in the queue
    expect((await rowOf(one.jobId)).status).toBe('queued');
    expect((await rowOf(two.jobId)).status).toBe('queued');
    // a worker takes one of them before the gateway's bot is ready
    const w = make('w');
    await w.service.start();
    const claimed = await w.engine.nextCall();
    const [taken, waiting, waitingPrompt] = claimed.prompt === 'one' ? [one, two, 'two'] : [two, one, 'one'];
    expect((await rowOf(taken.jobId)).status).toBe('running');
    const told: HandedBackJob[] = [];
    backend.onHandedBack(async (job) => {
      told.push(job);
    });
    await until(() => told.length > 0);
    await new Promise((r) => setTimeout(r, 200)); // (a second one would come now)
    expect(told.map((j) => [j.info.jobId, j.info.status, j.interaction?.token])).toEqual([
      [waiting.jobId, 'queued', `token-${waitingPrompt}`],
    ]);
  });
});
