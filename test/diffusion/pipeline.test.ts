// The pipeline on real ONNX sessions of the tiny model (src/diffusion/model/tiny-model.ts), whose UNet is
// the exact denoiser for N(mu(cond), s²I). Reference: the probability-flow closed form, with
// mu_cfg = mu_u + cfg·(mu_c − mu_u) and mu_c = mean over tokens of sin(id·(c+1)·0.001 + c).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenizePrompt } from '../../src/diffusion/conditioning.ts';
import {
  loadSdModel,
  ModelLoadError,
  providerEntry,
  type SdModel,
} from '../../src/diffusion/model/sd-model.ts';
import { createGenerator } from '../../src/diffusion/noise/image-rng.ts';
import { Pipeline } from '../../src/diffusion/pipeline.ts';
import { promptToChunks } from '../../src/diffusion/prompt/chunks.ts';
import { DEFAULT_REQUEST, type GenerationRequest, RequestError } from '../../src/diffusion/request.ts';
import { ddimTimesteps } from '../../src/diffusion/samplers.ts';
import { SD1_SCHEDULE } from '../../src/diffusion/schedule.ts';
import { karrasSigmas, uniformSigmas } from '../../src/diffusion/sigmas.ts';
import { writeTinyModel } from '../support/tiny-model.ts';

const root = mkdtempSync(path.join(tmpdir(), 'hiresbot-pipeline-'));
const S = 0.5; // the tiny model's data std
const models: Record<string, SdModel> = {};

beforeAll(async () => {
  const variants = {
    fp32: { layout: 'diffusers' },
    fp16: { layout: 'optimum', dtype: 'fp16', timestep: 'float-scalar' },
    int64: { layout: 'optimum', timestep: 'int64' },
  } as const;
  for (const [name, opts] of Object.entries(variants)) {
    const dir = path.join(root, name);
    writeTinyModel(dir, opts);
    models[name] = await loadSdModel(dir);
  }
});
afterAll(async () => {
  await Promise.all(Object.values(models).map((m) => m.release()));
  rmSync(root, { recursive: true, force: true });
});

const request = (over: Partial<GenerationRequest> = {}): GenerationRequest => ({
  ...DEFAULT_REQUEST,
  prompt: 'a red fox in the snow',
  negative: 'blurry',
  seed: 1234,
  width: 64,
  height: 64,
  ...over,
});

/** mu_c for c < 4: the mean over all tokens of the tiny text encoder's output channel c. */
function mu(model: SdModel, prompt: string): number[] {
  const ids = promptToChunks(prompt, model.tokenizer).chunks.flatMap((c) => c.tokens);
  return [0, 1, 2, 3].map(
    (c) => ids.reduce((acc, id) => acc + Math.sin(id * (c + 1) * 0.001 + c), 0) / ids.length,
  );
}

/** The ODE's end state from x_start at σ_start, through σ_min then D(·; σ_min). */
function closedForm(
  xStart: Float32Array,
  shape: number[],
  muCfg: number[],
  sigmaStart: number,
  sigmaMin: number,
) {
  const plane = (shape[1] as number) * (shape[2] as number);
  const k = (S * S) / Math.sqrt(S * S + sigmaMin ** 2) / Math.sqrt(S * S + sigmaStart ** 2);
  return Array.from(xStart, (v, i) => {
    const m = muCfg[Math.floor(i / plane)] as number;
    return m + (v - m) * k;
  });
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};

describe('loading model folders', () => {
  it('reads each layout’s I/O instead of assuming it', () => {
    expect(models.fp32?.textEncoder.idsType).toBe('int32');
    expect(models.fp32?.unet).toMatchObject({
      timestepType: 'float32',
      timestepRank: 1,
      sampleType: 'float32',
    });
    expect(models.fp32?.unet.weightsFile).toMatch(/unet\/weights\.pb$/);
    expect(models.fp16?.textEncoder).toMatchObject({ idsType: 'int64', outputType: 'float16' });
    expect(models.fp16?.unet).toMatchObject({
      timestepType: 'float32',
      timestepRank: 0,
      sampleType: 'float16',
    });
    expect(models.fp16?.unet.weightsFile).toMatch(/unet\/model\.onnx_data$/);
    expect(models.fp16?.vaeEncoder?.output).toBe('latent_parameters');
    expect(models.int64?.unet.timestepType).toBe('int64');
    expect(models.fp32?.name).toBe('fp32');
  });

  it('falls back to the CPU once, loudly, when the GPU provider cannot load', async () => {
    const warnings: string[] = [];
    const m = await loadSdModel(path.join(root, 'fp32'), {
      executionProviders: ['cuda', 'cpu'],
      log: { warn: (w) => warnings.push(w), info: () => {} },
    });
    await m.release();
    if (m.executionProviders.includes('cuda')) {
      // onnxruntime's CUDA build on a machine with a GPU: every part loaded there, without a word
      expect(m.executionProviders).toEqual(['cuda', 'cpu']);
      expect(warnings).toEqual([]);
    } else {
      expect(m.executionProviders).toEqual(['cpu']);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^execution providers \[cuda, cpu\] failed for .*FALLING BACK TO CPU/);
    }
  });

  it("gives onnxruntime webgpu's channels-last layout, a device number to the providers that take one, and the caller's options over ours", () => {
    expect(providerEntry('cpu', {})).toBe('cpu');
    expect(providerEntry('cuda', {})).toBe('cuda');
    // measured on an H100: NHWC took 0.59–0.78× the NCHW step time
    expect(providerEntry('webgpu', {})).toEqual({ name: 'webgpu', preferredLayout: 'NHWC' });
    expect(providerEntry('webgpu', { deviceId: 1 })).toEqual({ name: 'webgpu', preferredLayout: 'NHWC' });
    expect(providerEntry('cuda', { deviceId: 1 })).toEqual({ name: 'cuda', deviceId: 1 });
    expect(
      providerEntry('webgpu', { providerOptions: { webgpu: { preferredLayout: 'NCHW' }, cuda: { x: 1 } } }),
    ).toEqual({ name: 'webgpu', preferredLayout: 'NCHW' });
  });

  it('falls back to the CPU, naming the missing adapter, when webgpu finds no Vulkan driver', async () => {
    // no Vulkan driver manifest (the loader reads these when onnxruntime first asks Dawn for an
    // adapter, which no other test of this file does): what a host without the GPU driver's
    // Vulkan part sees, on any machine
    const saved = { a: process.env.VK_ICD_FILENAMES, b: process.env.VK_DRIVER_FILES };
    process.env.VK_ICD_FILENAMES = process.env.VK_DRIVER_FILES = path.join(root, 'no-such-icd.json');
    const warnings: string[] = [];
    try {
      const m = await loadSdModel(path.join(root, 'fp32'), {
        executionProviders: ['webgpu'],
        log: { warn: (w) => warnings.push(w), info: () => {} },
      });
      await m.release();
      expect(m.executionProviders).toEqual(['cpu']);
    } finally {
      for (const [k, v] of [
        ['VK_ICD_FILENAMES', saved.a],
        ['VK_DRIVER_FILES', saved.b],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(warnings).toHaveLength(1);
    // onnxruntime's source path and failed condition are cut: the reason comes first
    expect(warnings[0]).toMatch(
      /^execution providers \[webgpu\] failed for \S+text_encoder\/model\.onnx \(Failed to get a WebGPU adapter: [^)]+\); FALLING BACK TO CPU/,
    );
  });

  it('names every missing part of an incomplete folder', async () => {
    const dir = path.join(root, 'broken');
    writeTinyModel(dir, { layout: 'diffusers', omit: 'unet' });
    await expect(loadSdModel(dir)).rejects.toThrow(
      new ModelLoadError(`model folder ${dir} is missing unet/model.onnx (the UNet)`),
    );
  });
});

describe('base pass converges to the closed form', () => {
  async function baseError(
    sampler: 'Euler' | 'DPM++ 2M',
    steps: number,
    prompt = 'a red fox in the snow',
    negative = 'blurry',
  ) {
    const model = models.fp32 as SdModel;
    const p = new Pipeline(model, { modelHash: '0', timestepRounding: 'exact' });
    const req = request({ sampler, steps, cfg: 5, prompt, negative });
    const latent = await p.basePass(req);
    const sigmas =
      sampler === 'Euler' ? uniformSigmas(SD1_SCHEDULE, steps) : karrasSigmas(SD1_SCHEDULE, steps);
    const noise = createGenerator('nv', 1234).randn(latent.data.length);
    const xT = Float32Array.from(noise, (n) => n * (sigmas[0] as number));
    const mc = mu(model, prompt);
    const mu0 = mu(model, negative);
    const muCfg = mc.map((m, c) => (mu0[c] as number) + 5 * (m - (mu0[c] as number)));
    const want = closedForm(xT, latent.shape, muCfg, sigmas[0] as number, sigmas[steps - 1] as number);
    return maxAbsDiff(latent.data, want);
  }

  it('Euler: first order', async () => {
    const e = [await baseError('Euler', 20), await baseError('Euler', 40), await baseError('Euler', 80)];
    expect(Math.log2((e[1] as number) / (e[2] as number))).toBeCloseTo(1, 0);
  });

  it('DPM++ 2M (Karras): second order', async () => {
    const e = [
      await baseError('DPM++ 2M', 10),
      await baseError('DPM++ 2M', 20),
      await baseError('DPM++ 2M', 40),
    ];
    expect(Math.log2((e[1] as number) / (e[2] as number))).toBeCloseTo(2, 0);
    expect(e[2]).toBeLessThan(0.01);
  });

  it('runs cond and uncond separately when their chunk counts differ (prompt > 75 tokens)', async () => {
    const long = Array(100).fill('fox').join(' ');
    expect(await baseError('DPM++ 2M', 40, long, '')).toBeLessThan(0.01);
  });
});

describe('DDIM on A1111’s CompVis grid', () => {
  async function ddimError(steps: number) {
    const model = models.fp32 as SdModel;
    const p = new Pipeline(model, { modelHash: '0', timestepRounding: 'exact' });
    const req = request({ sampler: 'DDIM', steps, cfg: 3 });
    const latent = await p.basePass(req);
    const grid = ddimTimesteps(steps);
    const sigmaT = SD1_SCHEDULE.sigmas[grid.at(-1) as number] as number;
    const sigmaEnd = SD1_SCHEDULE.sigmas[grid[0] as number] as number; // ᾱ[timesteps[0]] = ᾱ[1]
    const noise = createGenerator('nv', 1234).randn(latent.data.length);
    const mc = mu(model, req.prompt);
    const mu0 = mu(model, req.negative);
    const muCfg = mc.map((m, c) => (mu0[c] as number) + 3 * (m - (mu0[c] as number)));
    // x_ddim starts as raw noise (x_k = noise·√(1+σ_T²)); the ODE runs to σ(1) and is scaled back by √ᾱ
    const plane = 64;
    const want = Array.from(noise, (n, i) => {
      const m = muCfg[Math.floor(i / plane)] as number;
      const xk =
        m +
        (n * Math.sqrt(1 + sigmaT ** 2) - m) *
          (Math.sqrt(S * S + sigmaEnd ** 2) / Math.sqrt(S * S + sigmaT ** 2));
      return xk / Math.sqrt(1 + sigmaEnd ** 2);
    });
    return maxAbsDiff(latent.data, want);
  }

  it('converges at first order towards the ODE solution at ᾱ[1]', async () => {
    const e = [await ddimError(50), await ddimError(100), await ddimError(200)];
    expect(Math.log2((e[1] as number) / (e[2] as number))).toBeCloseTo(1, 0);
  });
});

describe('hires pass', () => {
  it('continues the ODE from upscaled latent + σs[0]·(fresh noise of the same seed)', async () => {
    const model = models.fp32 as SdModel;
    const p = new Pipeline(model, { modelHash: '0', timestepRounding: 'exact' });
    const req = request({
      steps: 40,
      hiresSteps: 40,
      denoise: 0.5,
      hiresScale: 1.5,
      upscaler: 'Latent (nearest)',
    });
    const base = await p.basePass(req);
    const hires = await p.hiresPass(req, base);
    expect(hires.shape).toEqual([4, 12, 12]);
    const total = Math.trunc(40 / 0.5);
    const sigmas = karrasSigmas(SD1_SCHEDULE, total).subarray(total - 39 - 1);
    expect(sigmas).toHaveLength(41);
    const noise = createGenerator('nv', 1234).randn(4 * 12 * 12);
    // nearest 8→12: source index floor(i·8/12)
    const src = (i: number) => Math.floor(i * (8 / 12));
    const xi = new Float32Array(4 * 144);
    for (let c = 0; c < 4; c++)
      for (let y = 0; y < 12; y++)
        for (let x = 0; x < 12; x++) {
          const k = c * 144 + y * 12 + x;
          xi[k] =
            (base.data[c * 64 + src(y) * 8 + src(x)] as number) +
            (noise[k] as number) * (sigmas[0] as number);
        }
    const mc = mu(model, req.prompt);
    const mu0 = mu(model, req.negative);
    const muCfg = mc.map((m, c) => (mu0[c] as number) + 7 * (m - (mu0[c] as number)));
    const want = closedForm(xi, hires.shape, muCfg, sigmas[0] as number, sigmas[39] as number);
    expect(maxAbsDiff(hires.data, want)).toBeLessThan(0.01);
  });
});

describe('prompt length', () => {
  it('takes 10 chunks of 75 tokens and refuses an 11th before the text encoder runs', () => {
    const model = models.fp32 as SdModel;
    // "fox," is two tokens; 375 of them fill 10 chunks exactly (the commas fall on chunk ends)
    expect(tokenizePrompt(model, 'prompt', 'fox,'.repeat(375)).chunks).toHaveLength(10);
    expect(() => tokenizePrompt(model, 'negative', 'fox,'.repeat(376))).toThrow(
      new RequestError(
        'negative',
        'must fit in 10 chunks of 75 tokens, each BREAK starting a new one (got 11 chunks)',
      ),
    );
  });
});

describe('hires schedule bounds in the pipeline itself', () => {
  // a request that skipped validation (an old job row, a direct caller) must not reach the sampler
  it.each([
    ['DDIM', 0.01, 20, 'must be at least 0.02 with 20 hires steps (got 0.01)'],
    ['Euler', 0.000001, 150, 'must be at least 0.15 with 150 hires steps (got 0.000001)'],
  ] as const)(
    '%s at denoise %f, %i steps is refused before sampling',
    async (sampler, denoise, steps, message) => {
      const p = new Pipeline(models.fp32 as SdModel, { modelHash: '0' });
      const base = { data: new Float32Array(4 * 8 * 8), shape: [4, 8, 8] as [number, number, number] };
      const progress: number[] = [];
      await expect(
        p.hiresPass(request({ sampler, denoise, steps }), base, { onProgress: (e) => progress.push(e.step) }),
      ).rejects.toThrow(
        new RequestError('denoise', `${message}; lower values need a schedule of more than 1000 steps`),
      );
      expect(progress).toEqual([]);
    },
  );
});

describe('fp16 and int64-timestep exports', () => {
  it('give the same images as fp32 within a few 8-bit levels', async () => {
    const req = request({ steps: 12, hiresSteps: 6 });
    const decoded: Record<string, Buffer[]> = {};
    for (const name of ['fp32', 'fp16', 'int64']) {
      const p = new Pipeline(models[name] as SdModel, { modelHash: '0' });
      const base = await p.basePass(req);
      const hires = await p.hiresPass(req, base);
      decoded[name] = [(await p.decode(base)).rgb, (await p.decode(hires)).rgb];
    }
    for (const name of ['fp16', 'int64']) {
      for (const i of [0, 1]) {
        const a = decoded.fp32?.[i] as Buffer;
        const b = decoded[name]?.[i] as Buffer;
        expect(b.length).toBe(a.length);
        // stated tolerance: fp16 I/O and nearest-index timesteps move pixels by at most 4 levels
        expect(maxAbsDiff(a, b), `${name} image ${i}`).toBeLessThanOrEqual(4);
      }
    }
  });
});

describe('generate', () => {
  it('returns a base and one upscaled image per denoise, from one base pass', async () => {
    const p = new Pipeline(models.fp32 as SdModel, { modelHash: 'abcdef0123', previewEvery: 2 });
    const events: string[] = [];
    const result = await p.generate(request({ steps: 4 }), {
      denoises: [0.3, 0.6],
      onProgress: (e) => events.push(`${e.pass}:${e.step}/${e.total}${e.preview ? '+preview' : ''}`),
    });
    expect(result.base).toMatchObject({ width: 64, height: 64 });
    expect(result.upscaled.map((u) => [u.denoise, u.width, u.height])).toEqual([
      [0.3, 128, 128],
      [0.6, 128, 128],
    ]);
    expect(events.filter((e) => e.startsWith('base'))).toEqual([
      'base:1/4',
      'base:2/4+preview',
      'base:3/4',
      'base:4/4',
    ]);
    expect(events.filter((e) => e.startsWith('hires'))).toHaveLength(8);
    expect(result.upscaled[0]?.infotext).toContain('Denoising strength: 0.3');
    expect(result.base.infotext).not.toContain('Denoising strength');
  });

  it('stops between steps when cancelled', async () => {
    const p = new Pipeline(models.fp32 as SdModel, { modelHash: '0' });
    const ac = new AbortController();
    const steps: number[] = [];
    await expect(
      p.basePass(request({ steps: 10 }), {
        signal: ac.signal,
        onProgress: (e) => {
          steps.push(e.step);
          if (e.step === 3) ac.abort();
        },
      }),
    ).rejects.toThrow('generation cancelled');
    expect(steps).toEqual([1, 2, 3]);
  });
});
