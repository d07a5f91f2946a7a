// The engine's worker thread on real ONNX sessions of a tiny export.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSdModel } from '../../src/diffusion/model/sd-model.ts';
import { Pipeline } from '../../src/diffusion/pipeline.ts';
import { readPngText } from '../../src/diffusion/png-text.ts';
import { DEFAULT_REQUEST, type GenerationRequest } from '../../src/diffusion/request.ts';
import { Engine, EngineError, type EngineSettings } from '../../src/engine/engine.ts';
import { writeTinyModel } from '../support/tiny-model.ts';

const root = mkdtempSync(path.join(tmpdir(), 'hiresbot-engine-'));
const plainDir = path.join(root, 'tiny-sd15');
const slowDir = path.join(root, 'slow');
const settings = (modelDir: string): EngineSettings => ({
  modelDir,
  executionProviders: ['cpu'],
  previewEvery: 2,
  timestepRounding: 'fp16',
});
let engine: Engine;

beforeAll(async () => {
  writeTinyModel(plainDir, { layout: 'diffusers' });
  writeTinyModel(slowDir, { layout: 'diffusers', unetWork: 1536 });
  engine = await Engine.start(settings(plainDir));
});
afterAll(async () => {
  await engine.close();
  rmSync(root, { recursive: true, force: true });
});

const request = (over: Partial<GenerationRequest> = {}): GenerationRequest => ({
  ...DEFAULT_REQUEST,
  prompt: 'a lighthouse at dusk',
  seed: 42,
  width: 64,
  height: 64,
  steps: 6,
  ...over,
});

describe('Engine', () => {
  it('loads the model once and reports its name and A1111 hash', () => {
    expect(engine.model.name).toBe('tiny-sd15');
    expect(engine.model.hash).toMatch(/^[0-9a-f]{10}$/);
    expect(engine.model.executionProviders).toEqual(['cpu']);
  });

  it('generates base and upscaled PNGs with progress and previews', async () => {
    const events: string[] = [];
    const result = await engine.generate(request(), {
      onProgress: (e) => events.push(`${e.pass}${e.step}${e.preview ? 'p' : ''}`),
    });
    expect(Buffer.isBuffer(result.base.png)).toBe(true);
    expect(readPngText(result.base.png).get('parameters')).toContain(
      `Model hash: ${engine.model.hash}, Model: tiny-sd15`,
    );
    expect(result.upscaled[0]).toMatchObject({ width: 128, height: 128, denoise: 0.7 });
    expect(events).toEqual([
      'base1',
      'base2p',
      'base3',
      'base4p',
      'base5',
      'base6',
      'hires1',
      'hires2p',
      'hires3',
      'hires4p',
      'hires5',
      'hires6',
    ]);
  });

  it('re-upscales a stored base latent to the same image as the original job', async () => {
    const req = request({ seed: 7 });
    const first = await engine.generate(req, { denoises: [0.4, 0.6] });
    const again = await engine.upscale(req, first.base.latent, { denoises: [0.6] });
    expect(again.upscaled[0]?.png.equals(first.upscaled[1]?.png as Buffer)).toBe(true);
  });

  it('cancels a running job between steps', async () => {
    const ac = new AbortController();
    const job = engine.generate(request({ steps: 40 }), {
      signal: ac.signal,
      onProgress: (e) => {
        if (e.step === 2) ac.abort();
      },
    });
    await expect(job).rejects.toMatchObject({ kind: 'cancelled' });
    // the worker is free for the next job
    await expect(engine.generate(request({ steps: 2 }))).resolves.toBeDefined();
  });

  it('fails to start with the loader’s message for a broken folder', async () => {
    const broken = path.join(root, 'broken');
    writeTinyModel(broken, { layout: 'optimum', omit: 'vae_decoder' });
    await expect(Engine.start(settings(broken))).rejects.toEqual(
      new EngineError('load', `model folder ${broken} is missing vae_decoder/model.onnx (the VAE decoder)`),
    );
  });
});

describe('off the main thread', () => {
  /** The longest the event loop went without running a 5 ms timer while `work` ran. */
  async function maxDelayDuring(work: () => Promise<unknown>): Promise<number> {
    let last = performance.now();
    let worst = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 5);
    await work();
    clearInterval(timer);
    return Math.max(worst, performance.now() - last);
  }

  it('keeps the event loop responsive while the worker runs slow UNet calls', async () => {
    const slow = await Engine.start(settings(slowDir));
    try {
      const req = request({ steps: 8, hiresSteps: 4 });
      // the same job on this thread blocks the loop for whole UNet calls (proves the bound can fail)
      const model = await loadSdModel(slowDir);
      const onThread = await maxDelayDuring(() => new Pipeline(model, { modelHash: '0' }).basePass(req));
      await model.release();
      const inWorker = await maxDelayDuring(() => slow.generate(req));
      expect(onThread).toBeGreaterThan(30);
      // generous: the worker's threads compete with this one for the machine's cores
      expect(inWorker).toBeLessThan(Math.min(100, onThread / 2));
    } finally {
      await slow.close();
    }
  });
});
