/**
 * txt2img + latent "Hires. fix" in A1111 v1.10's order (`processing.py::
 * StableDiffusionProcessingTxt2Img.sample` / `sample_hr_pass`): base pass from the seed's noise,
 * latent upscale, fresh noise from the same seed at the hires shape, a second pass over the
 * denoise-sliced schedule, and no VAE decode/encode between passes.
 */
import type * as ort from 'onnxruntime-node';
import { createCfgDenoiser, type TimestepRounding } from './cfg-denoiser.ts';
import { type Conditioning, encodePrompt, tokenizePrompt } from './conditioning.ts';
import { hiresSchedule } from './hires-schedule.ts';
import { encodePng, latentPreviewPng, toRgbBytes } from './image.ts';
import { formatInfotext } from './infotext.ts';
import { upscaleLatent } from './latent-upscale.ts';
import { floatsOf, floatTensor } from './model/float-tensor.ts';
import type { SdModel } from './model/sd-model.ts';
import { ImageRng } from './noise/image-rng.ts';
import { type GenerationRequest, hiresSize } from './request.ts';
import { ddimTimesteps, resolveScheduler, SAMPLER_INFO, type SamplerFn } from './samplers.ts';
import { type DiscreteSchedule, SD1_SCHEDULE } from './schedule.ts';
import { sigmasFor } from './sigmas.ts';

export type Pass = 'base' | 'hires';

export interface ProgressEvent {
  pass: Pass;
  /** 1-based step just finished. */
  step: number;
  total: number;
  /** A small PNG of the current latent (A1111 "Approx cheap"), every `previewEvery` steps. */
  preview?: Buffer;
}

export interface RunOptions {
  onProgress?: (event: ProgressEvent) => void;
  /** Checked between steps (an AbortSignal, or anything with `aborted`). */
  signal?: { readonly aborted: boolean };
}

export interface PipelineOptions {
  timestepRounding?: TimestepRounding;
  /** Preview every N steps; 0 = never. */
  previewEvery?: number;
  /** A1111 model hash of the folder, shown in infotexts. */
  modelHash: string;
  /** An external VAE the folder was imported with, shown in infotexts as A1111 shows it. */
  vae?: { name: string; hash: string } | undefined;
}

export interface Latent {
  data: Float32Array;
  /** (4, height/8, width/8) */
  shape: [number, number, number];
}

export interface RenderedImage {
  png: Buffer;
  width: number;
  height: number;
  infotext: string;
}

export type UpscaledImage = RenderedImage & { denoise: number };

export interface UpscaleResult {
  upscaled: UpscaledImage[];
  timings: { hiresMs: number[]; decodeMs: number };
}

export interface GenerationResult {
  base: RenderedImage & { latent: Latent };
  upscaled: UpscaledImage[];
  timings: { baseMs: number; hiresMs: number[]; decodeMs: number };
}

export class CancelledError extends Error {
  override name = 'CancelledError';
  constructor() {
    super('generation cancelled');
  }
}

interface Conds {
  key: string;
  cond: Conditioning;
  uncond: Conditioning;
}

export class Pipeline {
  private readonly schedule: DiscreteSchedule = SD1_SCHEDULE;
  private conds: Conds | undefined;

  constructor(
    readonly model: SdModel,
    private readonly options: PipelineOptions,
  ) {}

  /** Cond and uncond for a prompt pair, kept for the next pass of the same job. */
  private async conditioning(req: GenerationRequest): Promise<Conds> {
    const key = JSON.stringify([req.prompt, req.negative]);
    if (this.conds?.key !== key) {
      // both checked before either reaches the text encoder
      const prompt = tokenizePrompt(this.model, 'prompt', req.prompt);
      const negative = tokenizePrompt(this.model, 'negative', req.negative);
      const cond = await encodePrompt(this.model, prompt);
      const uncond = await encodePrompt(this.model, negative);
      this.conds = { key, cond, uncond };
    }
    return this.conds;
  }

  private async sample(
    req: GenerationRequest,
    pass: Pass,
    x: Float32Array,
    shape: Latent['shape'],
    sigmas: Float32Array,
    rng: ImageRng,
    fn: SamplerFn,
    run: RunOptions,
  ): Promise<Float32Array> {
    const { cond, uncond } = await this.conditioning(req);
    const model = createCfgDenoiser({
      model: this.model,
      schedule: this.schedule,
      cond,
      uncond,
      cfg: req.cfg,
      timestepRounding: this.options.timestepRounding ?? 'fp16',
      shape,
    });
    const total = sigmas.length - 1;
    const every = this.options.previewEvery ?? 0;
    // Progress goes out in step order, but a preview's PNG encode (sharp, off this thread) does
    // not hold up the next step: the sampler goes on while it encodes. The latent is read
    // synchronously when the preview starts, so its buffer may be reused at once.
    let delivered = Promise.resolve();
    // the sampler updates the latent in the denoiser's arena (WebAssembly loops); x gets the result
    const sampled = fn(model.adopt(x), {
      model,
      kernels: model.kernels,
      sigmas,
      noise: () => rng.next(),
      onStep: (i, _x, denoised) => {
        if (run.signal?.aborted) throw new CancelledError();
        const step = i + 1;
        const preview =
          every > 0 && step % every === 0 && step < total
            ? latentPreviewPng(denoised, shape[1], shape[2])
            : undefined;
        delivered = delivered.then(async () => {
          const png = await preview;
          run.onProgress?.({ pass, step, total, ...(png ? { preview: png } : {}) });
        });
      },
    });
    // a pass that fails (cancelled) drops what is still to deliver, and its errors with it
    const result = await sampled.catch((err: unknown) => {
      delivered.catch(() => {});
      throw err;
    });
    await delivered;
    x.set(result);
    return x;
  }

  /** The first pass: the seed's noise × σ_max, sampled to a latent of (4, H/8, W/8). */
  async basePass(req: GenerationRequest, run: RunOptions = {}): Promise<Latent> {
    if (run.signal?.aborted) throw new CancelledError();
    const shape: Latent['shape'] = [4, req.height / 8, req.width / 8];
    const rng = new ImageRng(shape, noiseSpec(req));
    const noise = rng.first();
    const info = SAMPLER_INFO[req.sampler];
    if (info.timesteps) {
      // DDIM on A1111's CompVis grid, run as Euler in σ-space: x_k = x_ddim/√ᾱ, Euler between the
      // grid's σ values, then back: x_ddim = x_k·√ᾱ at the last level (ᾱ[timesteps[0]]).
      const sigmas = gridSigmas(this.schedule, ddimTimesteps(req.steps));
      scale(noise, Math.sqrt(1 + (sigmas[0] as number) ** 2));
      const x = await this.sample(req, 'base', noise, shape, sigmas, rng, info.fn, run);
      scale(x, 1 / Math.sqrt(1 + (sigmas[sigmas.length - 1] as number) ** 2));
      return { data: x, shape };
    }
    const sigmas = sigmasFor(this.schedule, resolveScheduler(req), req.steps);
    scale(noise, sigmas[0] as number);
    return { data: await this.sample(req, 'base', noise, shape, sigmas, rng, info.fn, run), shape };
  }

  /** The second pass from a base latent, at `req.denoise`. */
  async hiresPass(req: GenerationRequest, base: Latent, run: RunOptions = {}): Promise<Latent> {
    if (run.signal?.aborted) throw new CancelledError();
    const target = hiresSize(req);
    const shape: Latent['shape'] = [4, target.height / 8, target.width / 8];
    const upscaled = upscaleLatent(base.data, base.shape, [shape[1], shape[2]], req.upscaler);
    // fresh noise from the same seed at the hires shape (A1111 builds a new ImageRNG)
    const rng = new ImageRng(shape, noiseSpec(req));
    const noise = rng.first();
    const { total, tEnc } = hiresSchedule(req.hiresSteps || req.steps, req.denoise);
    const info = SAMPLER_INFO[req.sampler];
    if (info.timesteps) {
      // A1111 CompVisSampler.sample_img2img: noise to ᾱ[ts[t_enc]], then run ts[:t_enc]
      const ts = ddimTimesteps(total);
      const a = this.schedule.alphasCumprod[ts[tEnc] as number] as number;
      const sigmas = gridSigmas(this.schedule, ts.slice(0, Math.max(tEnc, 1)));
      const into = Math.sqrt(1 + (sigmas[0] as number) ** 2);
      for (let k = 0; k < upscaled.length; k++) {
        upscaled[k] =
          ((upscaled[k] as number) * Math.sqrt(a) + (noise[k] as number) * Math.sqrt(1 - a)) * into;
      }
      const x = await this.sample(req, 'hires', upscaled, shape, sigmas, rng, info.fn, run);
      scale(x, 1 / Math.sqrt(1 + (sigmas[sigmas.length - 1] as number) ** 2));
      return { data: x, shape };
    }
    const sigmas = sigmasFor(this.schedule, resolveScheduler(req), total).subarray(total - tEnc - 1);
    const s0 = sigmas[0] as number;
    for (let k = 0; k < upscaled.length; k++)
      upscaled[k] = (upscaled[k] as number) + (noise[k] as number) * s0;
    return { data: await this.sample(req, 'hires', upscaled, shape, sigmas, rng, info.fn, run), shape };
  }

  /** VAE decode of one latent and A1111's 8-bit conversion: H·W·3 RGB bytes. */
  async decode(latent: Latent): Promise<{ rgb: Buffer; width: number; height: number }> {
    const { session, type, output } = this.model.vaeDecoder;
    const [c, h, w] = latent.shape;
    const z = new Float32Array(latent.data.length);
    const inv = 1 / this.model.scalingFactor;
    for (let k = 0; k < z.length; k++) z[k] = (latent.data[k] as number) * inv;
    const result = await session.run({ latent_sample: floatTensor(type, z, [1, c, h, w]) });
    const out = result[output] as ort.Tensor;
    const data = floatsOf(out);
    const height = out.dims[2] as number;
    const width = out.dims[3] as number;
    return { rgb: toRgbBytes(data, height, width), width, height };
  }

  async render(latent: Latent, infotext: string): Promise<RenderedImage> {
    const { rgb, width, height } = await this.decode(latent);
    return { png: await encodePng(rgb, width, height, infotext), width, height, infotext };
  }

  /** One upscaled image per denoise value (default: the request's), all from the given base latent. */
  async upscale(
    req: GenerationRequest,
    base: Latent,
    run: RunOptions & { denoises?: number[] } = {},
  ): Promise<UpscaleResult> {
    const model = { name: this.model.name, hash: this.options.modelHash, vae: this.options.vae };
    const upscaled: UpscaledImage[] = [];
    const hiresMs: number[] = [];
    let decodeMs = 0;
    for (const denoise of run.denoises ?? [req.denoise]) {
      const r = { ...req, denoise };
      const h0 = performance.now();
      const hires = await this.hiresPass(r, base, run);
      const d0 = performance.now();
      upscaled.push({ ...(await this.render(hires, formatInfotext(r, model, true))), denoise });
      hiresMs.push(d0 - h0);
      decodeMs += performance.now() - d0;
    }
    return { upscaled, timings: { hiresMs, decodeMs } };
  }

  /** Base image plus one upscaled image per denoise value, all from one base pass. */
  async generate(
    req: GenerationRequest,
    run: RunOptions & { denoises?: number[] } = {},
  ): Promise<GenerationResult> {
    const t0 = performance.now();
    const latent = await this.basePass(req, run);
    const t1 = performance.now();
    const model = { name: this.model.name, hash: this.options.modelHash, vae: this.options.vae };
    const base = await this.render(latent, formatInfotext(req, model, false));
    const t2 = performance.now();
    const { upscaled, timings } = await this.upscale(req, latent, run);
    return {
      base: { ...base, latent },
      upscaled,
      timings: { baseMs: t1 - t0, hiresMs: timings.hiresMs, decodeMs: t2 - t1 + timings.decodeMs },
    };
  }
}

function noiseSpec(req: GenerationRequest) {
  return {
    source: req.rng,
    seed: req.seed,
    subseed: req.subseed,
    subseedStrength: req.subseedStrength,
    ensd: req.ensd,
  };
}

function scale(x: Float32Array, by: number): void {
  for (let k = 0; k < x.length; k++) x[k] = (x[k] as number) * by;
}

/** σ of each CompVis grid timestep, highest first. */
function gridSigmas(schedule: DiscreteSchedule, timesteps: number[]): Float32Array {
  return Float32Array.from([...timesteps].reverse(), (t) => schedule.sigmas[t] as number);
}
