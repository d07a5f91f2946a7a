/**
 * Samplers as A1111 v1.10 runs them: k-diffusion @ab527a9 `sampling.py` (`to_d` = (x − den)/σ)
 * and, for DDIM, `sd_samplers_timesteps_impl.py::ddim` expressed in σ-space. Each is a short
 * function over a float32 latent, updated in place; noise comes from the job's ImageRng.
 */
import { SD1_TIMESTEPS } from './schedule.ts';
import type { ResolvedScheduler, Scheduler } from './sigmas.ts';
import { jsKernels, type StepKernels } from './step-arena.ts';

/** D(x; σ): the CFG-combined denoised latent (x0 estimate). */
export type Denoiser = (x: Float32Array, sigma: number, step: number) => Promise<Float32Array>;

export interface SamplerRun {
  model: Denoiser;
  /** Descending σ values; the sampler takes sigmas.length − 1 steps. */
  sigmas: Float32Array;
  /** Next draw of the job's noise stream (`torch.randn_like` in k-diffusion). */
  noise: () => Float32Array;
  /** Called after each step with the step index (0-based) and the current x. */
  onStep?: (step: number, x: Float32Array, denoised: Float32Array) => void | Promise<void>;
  /**
   * The loops of an update (default: the JS ones). A pass hands in its arena's, which run in
   * WebAssembly over the arrays held there and give the same bits.
   */
  kernels?: StepKernels;
}

export type SamplerFn = (x: Float32Array, run: SamplerRun) => Promise<Float32Array>;

/** `sample_euler` with s_churn = 0. (k-diffusion also draws one unused noise per step; A1111
 * never reads that stream again for Euler, so skipping the draw changes nothing.) */
export const sampleEuler: SamplerFn = async (x, { model, sigmas, onStep, kernels = jsKernels }) => {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const s = sigmas[i] as number;
    const sNext = sigmas[i + 1] as number;
    const den = await model(x, s, i);
    kernels.euler(x, den, s, sNext - s);
    await onStep?.(i, x, den);
  }
  return x;
};

/** `get_ancestral_step` with eta (A1111 `eta_ancestral` = 1). */
export function ancestralStep(
  sigmaFrom: number,
  sigmaTo: number,
  eta = 1,
): { sigmaDown: number; sigmaUp: number } {
  if (!eta) return { sigmaDown: sigmaTo, sigmaUp: 0 };
  const sigmaUp = Math.min(
    sigmaTo,
    eta * Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2),
  );
  return { sigmaDown: Math.sqrt(sigmaTo ** 2 - sigmaUp ** 2), sigmaUp };
}

/** `sample_euler_ancestral`, eta 1, s_noise 1. */
export const sampleEulerAncestral: SamplerFn = async (
  x,
  { model, sigmas, noise, onStep, kernels = jsKernels },
) => {
  for (let i = 0; i < sigmas.length - 1; i++) {
    const s = sigmas[i] as number;
    const sNext = sigmas[i + 1] as number;
    const den = await model(x, s, i);
    const { sigmaDown, sigmaUp } = ancestralStep(s, sNext);
    kernels.euler(x, den, s, sigmaDown - s);
    if (sNext > 0) {
      const n = noise();
      for (let k = 0; k < x.length; k++) x[k] = (x[k] as number) + (n[k] as number) * sigmaUp;
    }
    await onStep?.(i, x, den);
  }
  return x;
};

/** `sample_dpmpp_2m`: second-order multistep in log-σ time (t = −ln σ). */
export const sampleDpmpp2m: SamplerFn = async (x, { model, sigmas, onStep, kernels = jsKernels }) => {
  let old: Float32Array | undefined;
  for (let i = 0; i < sigmas.length - 1; i++) {
    const s = sigmas[i] as number;
    const sNext = sigmas[i + 1] as number;
    const den = await model(x, s, i);
    if (sNext === 0) {
      x.set(den);
    } else {
      const t = -Math.log(s);
      const tNext = -Math.log(sNext);
      const h = tNext - t;
      const ratio = sNext / s;
      const coef = -Math.expm1(-h);
      if (old === undefined) {
        kernels.dpm1(x, den, ratio, coef);
      } else {
        const r = (t + Math.log(sigmas[i - 1] as number)) / h;
        kernels.dpm2(x, den, old, ratio, coef, 1 + 1 / (2 * r), 1 / (2 * r));
      }
    }
    old = den;
    await onStep?.(i, x, den);
  }
  return x;
};

/**
 * `sample_dpmpp_2m_sde` (midpoint, eta 1). NOT seed-identical to A1111: A1111 draws this noise
 * from torchsde's BrownianTree; here each step's Brownian increment is one plain normal draw.
 */
export const sampleDpmpp2mSde: SamplerFn = async (x, { model, sigmas, noise, onStep }) => {
  let old: Float32Array | undefined;
  let hLast = 0;
  for (let i = 0; i < sigmas.length - 1; i++) {
    const s = sigmas[i] as number;
    const sNext = sigmas[i + 1] as number;
    const den = await model(x, s, i);
    if (sNext === 0) {
      x.set(den);
    } else {
      const h = -Math.log(sNext) + Math.log(s);
      const eh = h; // eta 1
      const decay = (sNext / s) * Math.exp(-eh);
      const c = -Math.expm1(-h - eh);
      const corr = old ? 0.5 * c * (h / hLast) : 0;
      const noiseScale = sNext * Math.sqrt(-Math.expm1(-2 * eh));
      const n = noise();
      for (let k = 0; k < x.length; k++) {
        let v = decay * (x[k] as number) + c * (den[k] as number);
        if (old) v += corr * ((den[k] as number) - (old[k] as number));
        x[k] = v + (n[k] as number) * noiseScale;
      }
      hLast = h;
    }
    old = den;
    await onStep?.(i, x, den);
  }
  return x;
};

export const SAMPLERS = ['Euler', 'Euler a', 'DPM++ 2M', 'DPM++ 2M SDE', 'DDIM'] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export interface SamplerInfo {
  name: SamplerName;
  fn: SamplerFn;
  /** What "Automatic" resolves to (A1111 `samplers_k_diffusion` options). */
  automatic: ResolvedScheduler;
  /** DDIM runs on A1111's CompVis timestep grid instead of a k-diffusion σ schedule. */
  timesteps: boolean;
  /** Draws noise after the first latent, so ENSD applies and is written to the infotext. */
  usesEnsd: boolean;
}

export const SAMPLER_INFO: Record<SamplerName, SamplerInfo> = {
  Euler: { name: 'Euler', fn: sampleEuler, automatic: 'Automatic', timesteps: false, usesEnsd: false },
  'Euler a': {
    name: 'Euler a',
    fn: sampleEulerAncestral,
    automatic: 'Automatic',
    timesteps: false,
    usesEnsd: true,
  },
  'DPM++ 2M': { name: 'DPM++ 2M', fn: sampleDpmpp2m, automatic: 'Karras', timesteps: false, usesEnsd: false },
  'DPM++ 2M SDE': {
    name: 'DPM++ 2M SDE',
    fn: sampleDpmpp2mSde,
    automatic: 'Exponential',
    timesteps: false,
    usesEnsd: false,
  },
  DDIM: { name: 'DDIM', fn: sampleEuler, automatic: 'Automatic', timesteps: true, usesEnsd: false },
};

/** Legacy names from before A1111 1.9 split the schedule out: name → (sampler, scheduler). */
export const LEGACY_SAMPLER_NAMES: Record<string, { sampler: SamplerName; scheduler: ResolvedScheduler }> = {
  'DPM++ 2M Karras': { sampler: 'DPM++ 2M', scheduler: 'Karras' },
  'DPM++ 2M SDE Karras': { sampler: 'DPM++ 2M SDE', scheduler: 'Karras' },
  'DPM++ 2M SDE Exponential': { sampler: 'DPM++ 2M SDE', scheduler: 'Exponential' },
};

/** The most steps DDIM's grid can take: beyond it `1000 // steps` is 0 (A1111 fails there too). */
export const MAX_DDIM_STEPS = SD1_TIMESTEPS;

/** A1111 `CompVisSampler.get_timesteps`: clip(range(0, 1000, 1000 // steps) + 1, 0, 999). */
export function ddimTimesteps(steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > MAX_DDIM_STEPS) {
    // a stride of 0 would loop for ever, growing the array until the process dies
    throw new RangeError(`DDIM needs a whole number of steps from 1 to ${MAX_DDIM_STEPS} (got ${steps})`);
  }
  const stride = Math.floor(1000 / steps);
  const out: number[] = [];
  for (let t = 0; t < 1000; t += stride) out.push(Math.min(Math.max(t + 1, 0), 999));
  return out;
}

/** What A1111 writes as "Schedule type" and samples with: "Automatic" → the sampler's default. */
export function resolveScheduler(req: { sampler: SamplerName; scheduler: Scheduler }): ResolvedScheduler {
  return req.scheduler === 'Automatic' ? SAMPLER_INFO[req.sampler].automatic : req.scheduler;
}
