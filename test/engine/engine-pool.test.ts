// ENGINE_WORKERS > 1: jobs really run side by side, each on its own engine. Checked by the order of
// events, not by the clock: a long job is only cancelled once the short one has settled.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_REQUEST, type GenerationRequest } from '../../src/diffusion/request.ts';
import { EnginePool } from '../../src/engine/engine-pool.ts';
import { writeTinyModel } from '../support/tiny-model.ts';

const work = mkdtempSync(path.join(tmpdir(), 'hiresbot-pool-'));
const modelDir = path.join(work, 'tiny');
const settings = {
  modelDir,
  executionProviders: ['cpu'],
  previewEvery: 0,
  timestepRounding: 'fp16' as const,
};
// a UNet call that takes real time (a 300×300 MatMul chain): the long job's 150 steps then
// outlast the short job's fixed costs (text encoder, VAE, PNG) however fast our own step code is
beforeAll(() => writeTinyModel(modelDir, { layout: 'diffusers', unetWork: 300 }));
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

/**
 * A long job (150 steps) and, once it has started, a short one (2 steps). The long job is
 * cancelled at its 3rd step if `cancelLongAtStep3`, else as soon as the short one is done.
 */
async function longThenShort(pool: EnginePool, cancelLongAtStep3: boolean): Promise<string[]> {
  const events: string[] = [];
  const cancelLong = new AbortController();
  let started!: () => void;
  const longStarted = new Promise<void>((resolve) => (started = resolve));
  const long = pool
    .generate(request(150), {
      signal: cancelLong.signal,
      onProgress: (e) => {
        if (e.step === 1) started();
        if (e.step === 3 && cancelLongAtStep3) cancelLong.abort();
      },
    })
    .then(
      () => events.push('long done'),
      (e: { kind?: string }) => events.push(`long ${e.kind}`),
    );
  await longStarted;
  const short = pool.generate(request(2)).then(() => {
    events.push('short done');
    cancelLong.abort();
  });
  await Promise.all([long, short]);
  return events;
}

describe('EnginePool', () => {
  it('with one engine a short job waits behind a long one', async () => {
    const one = await EnginePool.start(1, settings);
    try {
      expect(one.size).toBe(1);
      expect(await longThenShort(one, true)).toEqual(['long cancelled', 'short done']);
    } finally {
      await one.close();
    }
  });

  it('with two engines a short job finishes while a long one is still running', async () => {
    const two = await EnginePool.start(2, settings);
    try {
      expect(two.size).toBe(2);
      expect(await longThenShort(two, false)).toEqual(['short done', 'long cancelled']);
      expect(two.model.name).toBe('tiny');
    } finally {
      await two.close();
    }
  });
});
