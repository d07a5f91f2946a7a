// What submit refuses up front, before anything is charged or queued: a request that would fail
// anyway only after waiting its turn.
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jobLatents, jobs } from '../../src/db/schema.ts';
import { DEFAULT_REQUEST, type GenerationRequest } from '../../src/diffusion/request.ts';
import type { Limiters } from '../../src/jobs/limiters.ts';
import type { JobService } from '../../src/jobs/service.ts';
import { DATABASE_KINDS, freshDatabase, type TestDatabase } from '../support/databases.ts';
import { createTestJobService } from '../support/job-service.ts';
import { StandInEngine } from '../support/stand-in-engine.ts';

const req = (over: Partial<GenerationRequest> = {}): GenerationRequest => ({
  ...DEFAULT_REQUEST,
  prompt: 'a lighthouse',
  seed: 1,
  width: 64,
  height: 64,
  ...over,
});

describe.each(DATABASE_KINDS)('submit on %s', (kind) => {
  let t: TestDatabase;
  let service: JobService;
  let limiters: Limiters;
  let engine: StandInEngine;
  let guild = 0;
  let g: string;

  beforeAll(async () => {
    t = await freshDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
  });
  afterEach(async () => {
    await service?.stop();
    await limiters?.close();
  });
  const setUp = () => {
    g = `submission-${kind}-${++guild}`;
    engine = new StandInEngine();
    // unlimited quota: the quota must not be what refuses
    ({ service, limiters } = createTestJobService(t.db, engine, {
      namespace: g,
      quota: { dailyUnits: 0, resetHourUtc: 0 },
    }));
  };
  const jobsHere = async () => t.db.select().from(jobs).where(eq(jobs.guildId, g));

  it('refuses to re-upscale an image whose base latent the retention sweep deleted', async () => {
    setUp();
    const parent = await service.submit({
      kind: 'imagine',
      guildId: g,
      channelId: 'c',
      userId: 'u1',
      request: req(),
    });
    (await engine.nextCall()).finish();
    expect(await parent.result).toMatchObject({ type: 'done' });
    await t.db.delete(jobLatents).where(eq(jobLatents.jobId, parent.jobId)); // as the sweep does
    await expect(
      service.submit({
        kind: 'upscale',
        guildId: g,
        channelId: 'c',
        userId: 'u1',
        request: req({ denoise: 0.5 }),
        parentJobId: parent.jobId,
      }),
    ).rejects.toMatchObject({ code: 'not-found', context: { what: 'image' } });
    expect((await jobsHere()).map((r) => r.kind)).toEqual(['imagine']); // nothing queued or charged
  });

  it('refuses an empty list of denoise values instead of skipping every check', async () => {
    setUp();
    // out of every bound: only the checks stand between it and the engine
    const request = req({ steps: 100_000, width: 100_000, prompt: '' });
    await expect(
      service.submit({ kind: 'imagine', guildId: g, channelId: 'c', userId: 'u1', request, denoises: [] }),
    ).rejects.toMatchObject({ code: 'bad-option' });
    expect(await jobsHere()).toEqual([]);
    expect(engine.calls).toHaveLength(0);
  });
});
