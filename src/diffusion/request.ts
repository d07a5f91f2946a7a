/**
 * A generation request: plain data, the same for the CLI, the job queue and the Discord commands,
 * validated once at the edge with a short error naming the option and its range.
 */
import { randomInt } from 'node:crypto';
import { hiresSchedule } from './hires-schedule.ts';
import { UPSCALERS, type Upscaler } from './latent-upscale.ts';
import { NOISE_SOURCES, type NoiseSource } from './noise/image-rng.ts';
import { RequestError } from './request-error.ts';
import {
  LEGACY_SAMPLER_NAMES,
  MAX_DDIM_STEPS,
  SAMPLER_INFO,
  SAMPLERS,
  type SamplerName,
} from './samplers.ts';
import { SCHEDULERS, type Scheduler } from './sigmas.ts';

export { RequestError };

export interface GenerationRequest {
  prompt: string;
  negative: string;
  /** 0 … 4294967295; resolve −1 with `resolveSeed` before building a request. */
  seed: number;
  subseed: number;
  subseedStrength: number;
  steps: number;
  cfg: number;
  sampler: SamplerName;
  scheduler: Scheduler;
  width: number;
  height: number;
  hiresScale: number;
  /** Second-pass steps; 0 = same as `steps`. */
  hiresSteps: number;
  upscaler: Upscaler;
  /** Denoising strength of the hires pass, in (0, 1]. */
  denoise: number;
  rng: NoiseSource;
  ensd: number;
}

export const MAX_SEED = 4294967295;

export const DEFAULT_REQUEST: Omit<GenerationRequest, 'prompt' | 'seed'> = {
  negative: '',
  subseed: 0,
  subseedStrength: 0,
  steps: 20,
  cfg: 7,
  sampler: 'DPM++ 2M',
  scheduler: 'Automatic',
  width: 512,
  height: 512,
  hiresScale: 2,
  hiresSteps: 0,
  upscaler: 'Latent',
  denoise: 0.7,
  rng: 'nv',
  ensd: 0,
};

/** Bounds checked before anything reaches the GPU. */
export interface RequestLimits {
  promptChars: number;
  steps: number;
  baseSide: number;
  hiresSide: number;
}

export const CLI_LIMITS: RequestLimits = { promptChars: 20_000, steps: 150, baseSide: 2048, hiresSide: 4096 };

/** A1111: seed −1 (or none) → `random.randrange(4294967294)`. */
export function resolveSeed(seed: number | undefined): number {
  return seed === undefined || seed === -1 ? randomInt(0, 4294967294) : seed;
}

export function hiresSize(req: Pick<GenerationRequest, 'width' | 'height' | 'hiresScale'>): {
  width: number;
  height: number;
} {
  // A1111 `calculate_target_resolution`: int(w·scale); the latent (and image) is that // 8 · 8
  const tx = Math.trunc(req.width * req.hiresScale);
  const ty = Math.trunc(req.height * req.hiresScale);
  return { width: Math.floor(tx / 8) * 8, height: Math.floor(ty / 8) * 8 };
}

/** The entry of `names` that `typed` spells, ignoring case and surrounding spaces. */
function findName<T extends string>(names: readonly T[], typed: string): T | undefined {
  const wanted = typed.trim().toLowerCase();
  return names.find((n) => n.toLowerCase() === wanted);
}

export function parseSamplerName(name: string): { sampler: SamplerName; scheduler?: Scheduler } {
  const exact = findName(SAMPLERS, name);
  if (exact) return { sampler: exact };
  const legacy = findName(Object.keys(LEGACY_SAMPLER_NAMES), name);
  if (legacy) return LEGACY_SAMPLER_NAMES[legacy] as { sampler: SamplerName; scheduler: Scheduler };
  throw new RequestError(
    'sampler',
    `must be one of ${[...SAMPLERS, ...Object.keys(LEGACY_SAMPLER_NAMES)].join(', ')} (got "${name}")`,
  );
}

export function parseSchedulerName(name: string): Scheduler {
  const found = findName(SCHEDULERS, name);
  if (!found) throw new RequestError('scheduler', `must be one of ${SCHEDULERS.join(', ')} (got "${name}")`);
  return found;
}

export function parseUpscalerName(name: string): Upscaler {
  const found = findName(UPSCALERS, name);
  if (!found) {
    throw new RequestError('upscaler', `must be a latent upscaler: ${UPSCALERS.join(', ')} (got "${name}")`);
  }
  return found;
}

export function parseNoiseSource(name: string): NoiseSource {
  const v = name.trim().toLowerCase();
  if (v === 'gpu') return 'nv';
  if (!(NOISE_SOURCES as readonly string[]).includes(v)) {
    throw new RequestError('rng', `must be cpu or nv (got "${name}")`);
  }
  return v as NoiseSource;
}

function checkInt(option: string, v: number, min: number, max: number) {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RequestError(option, `must be a whole number from ${min} to ${max} (got ${v})`);
  }
}

/**
 * Text that PostgreSQL, JSON and the tokenizer all take as it is: no NUL (a text column refuses
 * it) and no unpaired UTF-16 surrogate (`\p{Cs}` matches only lone ones under the u flag; the
 * same test as `String.prototype.isWellFormed`, which TypeScript's ES2023 lib does not declare).
 */
function checkText(option: string, text: string) {
  if (text.includes('\u0000')) throw new RequestError(option, 'must not contain NUL characters (\\u0000)');
  if (/\p{Cs}/u.test(text)) {
    throw new RequestError(option, 'must be valid Unicode text (it has an unpaired surrogate)');
  }
}

function checkNumber(option: string, v: number, min: number, max: number) {
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new RequestError(option, `must be a number from ${min} to ${max} (got ${v})`);
  }
}

/** Checks every bound; throws a RequestError naming the first bad option. */
export function validateRequest(
  req: GenerationRequest,
  limits: RequestLimits = CLI_LIMITS,
): GenerationRequest {
  if (req.prompt.trim() === '') throw new RequestError('prompt', 'must not be empty');
  for (const [option, text] of [
    ['prompt', req.prompt],
    ['negative', req.negative],
  ] as const) {
    if (text.length > limits.promptChars) {
      throw new RequestError(option, `must be at most ${limits.promptChars} characters (got ${text.length})`);
    }
    checkText(option, text);
  }
  checkInt('seed', req.seed, 0, MAX_SEED);
  checkInt('subseed', req.subseed, 0, MAX_SEED);
  checkNumber('subseed-strength', req.subseedStrength, 0, 1);
  checkInt('steps', req.steps, 1, limits.steps);
  if (SAMPLER_INFO[req.sampler].timesteps && req.steps > MAX_DDIM_STEPS) {
    throw new RequestError(
      'steps',
      `must be at most ${MAX_DDIM_STEPS} with ${req.sampler} (got ${req.steps})`,
    );
  }
  checkNumber('cfg', req.cfg, 1, 30);
  for (const [option, side] of [
    ['width', req.width],
    ['height', req.height],
  ] as const) {
    checkInt(option, side, 64, limits.baseSide);
    if (side % 8 !== 0) throw new RequestError(option, `must be a multiple of 8 (got ${side})`);
  }
  checkNumber('hires-scale', req.hiresScale, 1, 4);
  const target = hiresSize(req);
  if (Math.max(target.width, target.height) > limits.hiresSide) {
    throw new RequestError(
      'hires-scale',
      `makes a ${target.width}×${target.height} image; the largest side allowed is ${limits.hiresSide}`,
    );
  }
  checkInt('hires-steps', req.hiresSteps, 0, limits.steps);
  if (!(req.denoise > 0 && req.denoise <= 1)) {
    throw new RequestError('denoise', `must be greater than 0 and at most 1 (got ${req.denoise})`);
  }
  hiresSchedule(req.hiresSteps || req.steps, req.denoise);
  checkInt('ensd', req.ensd, 0, MAX_SEED);
  return req;
}
