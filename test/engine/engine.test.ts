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

describe('Engine warm-up', () => {
  it('warms up at the given shapes before the first job, and that job matches a cold engine’s', async () => {
    const logs: string[] = [];
    const warm = await Engine.start(
      {
        ...settings(plainDir),
        warmUp: [
          { height: 8, width: 8 },
          { height: 16, width: 16 },
        ],
      },
      { info: (m) => logs.push(m), warn: (m) => logs.push(`warn: ${m}`) },
    );
    try {
      // sent at once: it runs after the warm-up, which comes first in the worker's queue
      const result = await warm.generate(request());
      expect(logs.some((l) => /^warmed up at 64×64 and 128×128 in \d+\.\d s$/.test(l))).toBe(true);
      const cold = await engine.generate(request());
      expect(result.base.png.equals(cold.base.png)).toBe(true);
      expect(result.upscaled[0]?.png.equals(cold.upscaled[0]?.png as Buffer)).toBe(true);
    } finally {
      await warm.close();
    }
  });

  it('skips the warm-up when its GPU provider fell back to the CPU, saying why', async () => {
    // no Vulkan driver manifest: webgpu finds no adapter, on any machine (the loader reads this
    // process-wide variable when the worker first asks for an adapter)
    const saved = process.env.VK_ICD_FILENAMES;
    process.env.VK_ICD_FILENAMES = path.join(plainDir, 'no-such-icd.json');
    const logs: string[] = [];
    const fellBack = await Engine.start(
      { ...settings(plainDir), executionProviders: ['webgpu'], warmUp: [{ height: 8, width: 8 }] },
      { info: (m) => logs.push(m), warn: (m) => logs.push(`warn: ${m}`) },
    ).finally(() => {
      if (saved === undefined) delete process.env.VK_ICD_FILENAMES;
      else process.env.VK_ICD_FILENAMES = saved;
    });
    try {
      expect(fellBack.model.executionProviders).toEqual(['cpu']);
      // a job answers at once, not after a CPU warm-up
      await fellBack.generate(request());
      expect(logs).toContain('no warm-up: the model fell back to the CPU');
      expect(logs.some((l) => l.startsWith('warmed up'))).toBe(false);
      expect(logs.filter((l) => l.includes('FALLING BACK TO CPU'))).toHaveLength(1);
    } finally {
      await fellBack.close();
    }
  });
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
    const next = await engine.generate(request({ steps: 2 }));
    expect(readPngText(next.base.png).get('parameters')).toContain('Steps: 2, ');
  });

  it('fails to start with the loader’s message for a broken folder, the worker’s stack kept as its cause', async () => {
    const broken = path.join(root, 'broken');
    writeTinyModel(broken, { layout: 'optimum', omit: 'vae_decoder' });
    const failure = await Engine.start(settings(broken)).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(EngineError);
    expect(failure).toMatchObject({
      kind: 'load',
      message: `model folder ${broken} is missing vae_decoder/model.onnx (the VAE decoder)`,
    });
    const cause = (failure as EngineError).cause as Error;
    expect(cause.name).toBe('ModelLoadError');
    expect(cause.stack).toMatch(/ModelLoadError: model folder .*\n\s+at loadSdModel \(.*sd-model\.ts/);
  });

  it('a request the worker refuses fails with kind "request", its option and its stack', async () => {
    const failure = await engine
      .generate(request({ prompt: 'a, '.repeat(600) }))
      .catch((e: unknown) => e as EngineError);
    expect(failure).toMatchObject({
      kind: 'request',
      option: 'prompt',
      message: 'prompt must fit in 10 chunks of 75 tokens, each BREAK starting a new one (got 16 chunks)',
    });
    expect(((failure as EngineError).cause as Error).stack).toMatch(
      /^RequestError: prompt must fit .*\n\s+at tokenizePrompt/,
    );
  });
});

describe('off the main thread', () => {
  /** Turns of this thread's event loop (setImmediate callbacks) while `work` runs. */
  async function loopTurnsDuring(work: () => Promise<unknown>): Promise<number> {
    let turns = 0;
    let running = true;
    const turn = () => {
      turns++;
      if (running) setImmediate(turn);
    };
    setImmediate(turn);
    await work();
    running = false;
    return turns;
  }

  it('keeps the event loop turning while the worker runs slow UNet calls', async () => {
    const slow = await Engine.start(settings(slowDir));
    try {
      const req = request({ steps: 8, hiresSteps: 4 });
      // on this thread every UNet call blocks the loop: it turns about once per step, however slow
      const model = await loadSdModel(slowDir);
      const onThread = await loopTurnsDuring(() => new Pipeline(model, { modelHash: '0' }).basePass(req));
      await model.release();
      const inWorker = await loopTurnsDuring(() => slow.generate(req));
      expect(onThread).toBeLessThanOrEqual(2 * req.steps);
      // with the worker busy, the loop turns many times per step (thousands in practice)
      expect(inWorker).toBeGreaterThan(20 * (req.steps + req.hiresSteps));
    } finally {
      await slow.close();
    }
  });
});
