// The job service driving the real engine: a finished job's stored base latent feeds a later
// upscale job (the re-upscale button) without re-running the base pass.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REQUEST } from '../../src/diffusion/request.ts';
import { Engine } from '../../src/engine/engine.ts';
import { loadLatent } from '../../src/jobs/job-store.ts';
import { createLimiters, type Limiters } from '../../src/jobs/limiters.ts';
import { type JobEvent, JobService } from '../../src/jobs/service.ts';
import { freshDatabase, type TestDatabase } from '../support/databases.ts';
import { writeTinyModel } from '../support/tiny-model.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-service-engine-'));
let t: TestDatabase;
let engine: Engine;
let limiters: Limiters;
let service: JobService;
const events: JobEvent[] = [];

beforeAll(async () => {
  writeTinyModel(path.join(work, 'tiny'), { layout: 'optimum' });
  t = await freshDatabase('pglite');
  engine = await Engine.start({
    modelDir: path.join(work, 'tiny'),
    executionProviders: ['cpu'],
    previewEvery: 0,
    timestepRounding: 'fp16',
  });
  limiters = createLimiters({ perUser: 2, queueMax: 10 });
  service = new JobService({
    db: t.db,
    engine,
    limiters,
    quota: { dailyUnits: 50, resetHourUtc: 0 },
    jobTimeoutMs: 60_000,
  });
  service.on((e) => events.push(e));
  await service.start();
});
afterAll(async () => {
  await service.stop();
  await limiters.close();
  await engine.close();
  await t.destroy();
  rmSync(work, { recursive: true, force: true });
});

const doneEvent = async (jobId: string) => {
  for (let i = 0; i < 400; i++) {
    const e = events.find((x) => x.jobId === jobId && (x.type === 'done' || x.type === 'failed'));
    if (e) return e;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('job did not finish');
};

describe('job service with the real engine', () => {
  it('re-upscales from the stored base latent to the same picture as the original job', async () => {
    const request = {
      ...DEFAULT_REQUEST,
      prompt: 'a harbour at night',
      seed: 99,
      width: 64,
      height: 64,
      steps: 6,
    };
    const first = await service.submit({
      kind: 'imagine',
      guildId: 'g',
      channelId: 'c',
      userId: 'u1',
      request,
      denoises: [0.5],
    });
    const done = await doneEvent(first.jobId);
    expect(done.type).toBe('done');
    expect((await loadLatent(t.db, first.jobId))?.shape).toEqual([4, 8, 8]);

    const again = await service.submit({
      kind: 'upscale',
      guildId: 'g',
      channelId: 'c',
      userId: 'u2',
      request,
      denoises: [0.5],
      parentJobId: first.jobId,
    });
    const redone = await doneEvent(again.jobId);
    if (done.type !== 'done' || redone.type !== 'done') throw new Error('expected both jobs done');
    expect(redone.images.base).toBeUndefined();
    expect(redone.images.upscaled[0]?.png.equals(done.images.upscaled[0]?.png as Buffer)).toBe(true);
    expect(
      events
        .filter((e) => e.jobId === again.jobId && e.type === 'progress')
        .every((e) => e.type === 'progress' && e.progress.pass === 'hires'),
    ).toBe(true);
  });

  it('a prompt the engine refuses (past 10 chunks) fails as a bad option, refunded, and the engine goes on', async () => {
    const request = {
      ...DEFAULT_REQUEST,
      prompt: 'a, '.repeat(400),
      seed: 5,
      width: 64,
      height: 64,
      steps: 2,
    };
    const h = await service.submit({ kind: 'imagine', guildId: 'g2', channelId: 'c', userId: 'u3', request });
    const final = await h.result;
    expect(final).toMatchObject({ type: 'failed', reason: 'bad-option', refunded: true });
    expect(final.type === 'failed' && final.message).toMatch(/^prompt must fit in 10 chunks of 75 tokens/);
    const next = await service.submit({
      kind: 'imagine',
      guildId: 'g2',
      channelId: 'c',
      userId: 'u3',
      request: { ...request, prompt: 'a lighthouse' },
    });
    expect((await next.result).type).toBe('done');
  });
});
