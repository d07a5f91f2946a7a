// A job that ran goes back to the queue when its process stops or dies; the process that puts it
// back tells its hand-back listeners first (the front end edits the member's reply): on a clean
// stop while the row still says running there, so that nobody claims it before; on a takeover
// before the taking process claims it. Jobs that only waited are not told. Stand-in engine.
import { eq, sql } from 'drizzle-orm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type JobRow, jobs } from '../../src/db/schema.ts';
import type { Limiters } from '../../src/jobs/limiters.ts';
import type { JobService } from '../../src/jobs/service.ts';
import { DATABASE_KINDS, freshDatabase, type TestDatabase } from '../support/databases.ts';
import { createTestJobService, smallRequest } from '../support/job-service.ts';
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
  const make = (name: string) => {
    const engine = new StandInEngine();
    const m = createTestJobService(t.db, engine, {
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
});
