import { describe, expect, it } from 'vitest';
import { hiresSchedule, MAX_SCHEDULE_STEPS } from '../../src/diffusion/hires-schedule.ts';
import {
  DEFAULT_REQUEST,
  type GenerationRequest,
  hiresSize,
  parseSamplerName,
  RequestError,
  resolveSeed,
  validateRequest,
} from '../../src/diffusion/request.ts';

const ok: GenerationRequest = { ...DEFAULT_REQUEST, prompt: 'a cat', seed: 1 };
const LIMITS = { promptChars: 100, steps: 50, baseSide: 768, hiresSide: 1536 };
const problem = (over: Partial<GenerationRequest>) => {
  try {
    validateRequest({ ...ok, ...over }, LIMITS);
  } catch (e) {
    if (e instanceof RequestError) return e.message;
    throw e;
  }
  return undefined;
};

describe('validateRequest', () => {
  it('accepts the defaults', () => {
    expect(problem({})).toBeUndefined();
  });

  it.each([
    [{ denoise: 0 }, 'denoise must be greater than 0 and at most 1 (got 0)'],
    [{ denoise: 1.2 }, 'denoise must be greater than 0 and at most 1 (got 1.2)'],
    [{ steps: 51 }, 'steps must be a whole number from 1 to 50 (got 51)'],
    [{ width: 500 }, 'width must be a multiple of 8 (got 500)'],
    [{ height: 1024 }, 'height must be a whole number from 64 to 768 (got 1024)'],
    [{ hiresScale: 3 }, undefined],
    [{ hiresScale: 3.5 }, 'hires-scale makes a 1792×1792 image; the largest side allowed is 1536'],
    [
      { width: 768, hiresScale: 2.5 },
      'hires-scale makes a 1920×1280 image; the largest side allowed is 1536',
    ],
    [{ prompt: 'x'.repeat(101) }, 'prompt must be at most 100 characters (got 101)'],
    [{ prompt: '   ' }, 'prompt must not be empty'],
    [{ seed: -1 }, 'seed must be a whole number from 0 to 4294967295 (got -1)'],
    [{ cfg: 0 }, 'cfg must be a number from 1 to 30 (got 0)'],
    // the hires schedule is trunc(steps / denoise) levels long: at most the 1000 training timesteps
    [
      { sampler: 'DDIM', denoise: 0.01, steps: 20 },
      'denoise must be at least 0.02 with 20 hires steps (got 0.01); lower values need a schedule of more than 1000 steps',
    ],
    [{ sampler: 'DDIM', denoise: 0.02, steps: 20 }, undefined],
    [
      { denoise: 0.000001, steps: 50 },
      'denoise must be at least 0.05 with 50 hires steps (got 0.000001); lower values need a schedule of more than 1000 steps',
    ],
    [
      { denoise: 0.02, steps: 20, hiresSteps: 30 },
      'denoise must be at least 0.03 with 30 hires steps (got 0.02); lower values need a schedule of more than 1000 steps',
    ],
    [{ prompt: 'a\u0000b' }, 'prompt must not contain NUL characters (\\u0000)'],
    [{ negative: 'x\u0000' }, 'negative must not contain NUL characters (\\u0000)'],
    [{ prompt: 'fox \uD83E' }, 'prompt must be valid Unicode text (it has an unpaired surrogate)'],
    [{ negative: '\uDD8A fox' }, 'negative must be valid Unicode text (it has an unpaired surrogate)'],
    [{ prompt: 'a fox \uD83E\uDD8A' }, undefined],
  ])('%j → %s', (over, message) => {
    expect(problem(over as Partial<GenerationRequest>)).toBe(message);
  });
});

describe('validateRequest with a DDIM-sized step limit', () => {
  it('refuses more than 1000 DDIM steps, which A1111’s grid cannot take', () => {
    const limits = { ...LIMITS, steps: 2000 };
    expect(() => validateRequest({ ...ok, sampler: 'DDIM', steps: 1001, denoise: 1 }, limits)).toThrow(
      new RequestError('steps', 'must be at most 1000 with DDIM (got 1001)'),
    );
    expect(() => validateRequest({ ...ok, sampler: 'Euler', steps: 1001, denoise: 1 }, limits)).toThrow(
      /^denoise must be at least 1.001 with 1001 hires steps/,
    );
  });
});

describe('hiresSchedule (A1111 setup_img2img_steps with the steps given)', () => {
  it.each([
    [20, 0.7, { total: 28, tEnc: 19 }],
    [20, 1, { total: 20, tEnc: 19 }], // min(denoise, 0.999): trunc(20.02)
    [150, 1, { total: 150, tEnc: 149 }],
    [40, 0.5, { total: 80, tEnc: 39 }],
    [20, 0.02, { total: 1000, tEnc: 19 }],
    [1, 0.001, { total: 1000, tEnc: 0 }],
  ])('%i steps at denoise %f → %j', (steps, denoise, want) => {
    expect(hiresSchedule(steps, denoise)).toEqual(want);
  });

  it('refuses a schedule longer than the model’s training timesteps, naming denoise', () => {
    expect(MAX_SCHEDULE_STEPS).toBe(1000);
    expect(() => hiresSchedule(20, 0.0199)).toThrow(
      new RequestError(
        'denoise',
        'must be at least 0.02 with 20 hires steps (got 0.0199); lower values need a schedule of more than 1000 steps',
      ),
    );
    expect(() => hiresSchedule(150, 0.000001)).toThrow(/^denoise must be at least 0.15 with 150 hires steps/);
  });
});

describe('request helpers', () => {
  it('hires size is int(side·scale) floored to a multiple of 8', () => {
    expect(hiresSize({ width: 512, height: 768, hiresScale: 1.5 })).toEqual({ width: 768, height: 1152 });
    expect(hiresSize({ width: 520, height: 512, hiresScale: 1.3 })).toEqual({ width: 672, height: 664 });
  });

  it('seed −1 or none becomes a random seed below 4294967294', () => {
    for (let i = 0; i < 20; i++) expect(resolveSeed(-1)).toBeLessThan(4294967294);
    expect(resolveSeed(42)).toBe(42);
  });

  it('sampler names are A1111’s, legacy names included', () => {
    expect(parseSamplerName('euler a')).toEqual({ sampler: 'Euler a' });
    expect(parseSamplerName('DPM++ 2M Karras')).toEqual({ sampler: 'DPM++ 2M', scheduler: 'Karras' });
    expect(() => parseSamplerName('LMS')).toThrow(/^sampler must be one of Euler, Euler a/);
  });
});
