// ENGINE_WORKERS > 1: jobs really run side by side, each on its own engine.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REQUEST, type GenerationRequest } from '../../src/diffusion/request.ts';
import { EnginePool } from '../../src/engine/engine-pool.ts';
import { writeTinyModel } from '../support/tiny-model.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-pool-'));
const modelDir = path.join(work, 'slow');
const settings = {
  modelDir,
  executionProviders: ['cpu'],
  previewEvery: 0,
  timestepRounding: 'fp16' as const,
};
beforeAll(() => writeTinyModel(modelDir, { layout: 'diffusers', unetWork: 1024 }));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const request = (steps: number): GenerationRequest => ({
  ...DEFAULT_REQUEST,
  prompt: 'x',
  seed: 1,
  width: 64,
  height: 64,
  steps,
  hiresSteps: 1,
});

/** Starts a long job, then a short one; returns which finished first. */
async function race(pool: EnginePool): Promise<string> {
  const order: string[] = [];
  const long = pool.generate(request(40)).then(() => order.push('long'));
  const short = pool.generate(request(2)).then(() => order.push('short'));
  await Promise.all([long, short]);
  return order[0] as string;
}

describe('EnginePool', () => {
  it('with one engine a short job waits behind a long one; with two it does not', async () => {
    const one = await EnginePool.start(1, settings);
    try {
      expect(await race(one)).toBe('long');
    } finally {
      await one.close();
    }
    const two = await EnginePool.start(2, settings);
    try {
      expect(await race(two)).toBe('short');
      expect(two.model.name).toBe('slow');
    } finally {
      await two.close();
    }
  });
});
