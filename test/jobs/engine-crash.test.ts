// The engine worker dies under a running job: the job fails at once ("engine-crashed"), is
// refunded, and the next job runs on the engine the pool started in its place. Real engines.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REQUEST, type GenerationRequest } from '../../src/diffusion/request.ts';
import { Engine, type EngineSettings } from '../../src/engine/engine.ts';
import { EnginePool } from '../../src/engine/engine-pool.ts';
import { usage } from '../../src/jobs/quota-standing.ts';
import { freshDatabase, type TestDatabase } from '../support/databases.ts';
import { createTestJobService } from '../support/job-service.ts';
import { writeTinyModel } from '../support/tiny-model.ts';

const root = mkdtempSync(path.join(tmpdir(), 'hiresbot-engine-crash-'));
const settings: EngineSettings = {
  modelDir: path.join(root, 'tiny'),
  executionProviders: ['cpu'],
  previewEvery: 0,
  timestepRounding: 'fp16',
};
let t: TestDatabase;
beforeAll(async () => {
  writeTinyModel(settings.modelDir, { layout: 'diffusers' });
  t = await freshDatabase('pglite');
});
afterAll(async () => {
  await t?.destroy();
  rmSync(root, { recursive: true, force: true });
});

const request = (prompt: string, steps: number): GenerationRequest => ({
  ...DEFAULT_REQUEST,
  prompt,
  seed: 3,
  width: 64,
  height: 64,
  steps,
});

describe('the job service when its engine dies', () => {
  it('fails the running job at once and refunds it; the next job runs on the new engine', async () => {
    const engines: Engine[] = [];
    const pool = await EnginePool.start(1, settings, undefined, {
      startEngine: async (s, l) => {
        const engine = await Engine.start(s, l);
        engines.push(engine);
        return engine;
      },
    });
    const { service, limiters } = createTestJobService(t.db, pool, { jobTimeoutMs: 600_000 });
    try {
      await service.start();
      const scope = { guildId: 'g', userId: 'u1' };
      const doomed = await service.submit({
        kind: 'imagine',
        guildId: 'g',
        channelId: 'c',
        userId: 'u1',
        request: request('doomed', 150),
      });
      // at once: a loaded machine must not let the job's 150 steps finish before anyone listens
      let steps = 0;
      doomed.subscribe((e) => {
        if (e.type === 'progress' && ++steps === 1) void engines[0]?.kill();
      });
      const next = await service.submit({
        kind: 'imagine',
        guildId: 'g',
        channelId: 'c',
        userId: 'u1',
        request: request('next', 2),
      });
      const final = await doomed.result;
      expect(final).toMatchObject({ type: 'failed', reason: 'engine-crashed', refunded: true });
      // (how many steps it reported first depends on the load: progress messages already posted
      // by the engine's thread still arrive after the kill; the outcome above is what counts)
      expect(await next.result).toMatchObject({ type: 'done' });
      expect(engines.map((e) => e.alive)).toEqual([false, true]);
      // only the job that produced images is charged
      expect((await usage(t.db, scope, { dailyUnits: 100, resetHourUtc: 0 })).used).toBe(next.cost);
    } finally {
      await service.stop();
      await limiters.close();
      await pool.close();
    }
  });
});
