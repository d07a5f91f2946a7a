import { describe, expect, it } from 'vitest';
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
  ])('%j → %s', (over, message) => {
    expect(problem(over as Partial<GenerationRequest>)).toBe(message);
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
