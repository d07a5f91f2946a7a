// Two bot processes on one database: a job one of them holds is cancelled or taken over by the
// other. The handle of the process that held it still ends.
import { eq, sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jobs, usageLedger } from '../../src/db/schema.ts';
import { DEFAULT_REQUEST, type GenerationRequest } from '../../src/diffusion/request.ts';
import type { Limiters } from '../../src/jobs/limiters.ts';
import type { JobService } from '../../src/jobs/service.ts';
import { DATABASE_KINDS, freshDatabase, type TestDatabase } from '../support/databases.ts';
import { createTestJobService } from '../support/job-service.ts';
import { StandInEngine } from '../support/stand-in-engine.ts';

const req = (prompt: string): GenerationRequest => ({
  ...DEFAULT_REQUEST,
  prompt,
  seed: 1,
  width: 64,
  height: 64,
});

describe.each(DATABASE_KINDS)('two processes on %s', (kind) => {
  let t: TestDatabase;
  let made: { service: JobService; limiters: Limiters }[] = [];
  let guild = 0;
  let g: string;

  beforeAll(async () => {
    t = await freshDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
  });
  afterEach(async () => {
    for (const m of made) {
      await m.service.stop();
      await m.limiters.close();
    }
    made = [];
  });

  /** A process: heartbeats far apart, so that only what the test does moves a job. */
  const startProcess = async (name: string) => {
    const engine = new StandInEngine();
    const m = createTestJobService(t.db, engine, {
      instanceId: `${name}-${kind}-${g}`,
      namespace: `takeover-${name}-${kind}-${g}`,
      heartbeatMs: 60_000,
      staleMs: 30_000,
    });
    made.push(m);
    await m.service.start();
    return { ...m, engine };
  };
  const submit = (service: JobService, userId: string, prompt: string) =>
    service.submit({ kind: 'imagine', guildId: g, channelId: 'c', userId, request: req(prompt) });
  const ledgerOf = async (jobId: string) =>
    (await t.db.select().from(usageLedger).where(eq(usageLedger.jobId, jobId))).map((l) => l.kind).sort();

  it('a job queued here and cancelled through another process ends its handle here as cancelled', async () => {
    g = `cancel-${++guild}`;
    const a = await startProcess('a');
    const b = await startProcess('b');
    await submit(a.service, 'u1', 'running');
    const waiting = await submit(a.service, 'u2', 'waiting');
    const running = await a.engine.nextCall();
    await b.service.cancel(waiting.jobId, { userId: 'u2', isAdmin: false });
    running.finish(); // a's engine is free: the cancelled job is next in its queue
    expect(await waiting.result).toMatchObject({ type: 'cancelled', refunded: true });
    expect(a.engine.calls).toHaveLength(1); // the cancelled job never ran
    expect(await ledgerOf(waiting.jobId)).toEqual(['refund', 'reserve']);
  });

  it('a job another process took over (this one looked dead) ends its handle here as interrupted', async () => {
    g = `taken-${++guild}`;
    const a = await startProcess('a');
    const h = await submit(a.service, 'u1', 'taken');
    const first = await a.engine.nextCall();
    // a's heartbeats stopped reaching the database (a partition): its row looks stale
    await t.db.update(jobs).set({ heartbeatAt: sql`now() - interval '1 hour'` }).where(eq(jobs.id, h.jobId));
    const b = await startProcess('b'); // recovers at start
    const second = await b.engine.nextCall();
    first.finish(); // a's run ends after all: its result no longer counts
    expect(await h.result).toEqual({ type: 'interrupted', jobId: h.jobId });
    second.finish();
    const watched = b.service.watch(h.jobId);
    expect(await watched?.result).toMatchObject({ type: 'done' });
    expect(await ledgerOf(h.jobId)).toEqual(['commit', 'reserve']);
  });
});
