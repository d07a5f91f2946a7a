// Reference: the closed-form probability-flow solution for Gaussian data N(mu, s²I) under the
// exact denoiser D(x;σ) = mu + s²/(s²+σ²)·(x − mu): x(σ) = mu + (x_T − mu)·√(s² + σ²)/√(s² + σ_T²).
// A schedule ends …, σ_min, 0 and the last step returns D(x(σ_min); σ_min), so that is the limit:
// mu + (x_T − mu)·s²/(√(s² + σ_min²)·√(s² + σ_T²))  (→ the x(0) formula as σ_min → 0).
import { describe, expect, it } from 'vitest';
import { createGenerator } from '../../src/diffusion/noise/image-rng.ts';
import {
  ancestralStep,
  type Denoiser,
  ddimTimesteps,
  SAMPLER_INFO,
  sampleDpmpp2m,
  sampleDpmpp2mSde,
  sampleEuler,
  sampleEulerAncestral,
} from '../../src/diffusion/samplers.ts';
import { SD1_SCHEDULE } from '../../src/diffusion/schedule.ts';
import { karrasSigmas, uniformSigmas } from '../../src/diffusion/sigmas.ts';
import { assertClose } from '../support/assert-close.ts';

const MU = [0.5, -0.25, 1.0, 0];
const S = 0.8;
const exact: Denoiser = async (x, sigma) => {
  const out = new Float32Array(x.length);
  const k = (S * S) / (S * S + sigma * sigma);
  for (let i = 0; i < x.length; i++) out[i] = (MU[i] as number) + k * ((x[i] as number) - (MU[i] as number));
  return out;
};
const xT = (sigmaMax: number) => Float32Array.from([1.3, -0.7, 0.2, 2.1].map((n) => n * sigmaMax));
const closedForm = (x0: Float32Array, sigmaMax: number, sigmaMin: number) =>
  Array.from(
    x0,
    (v, i) =>
      (MU[i] as number) +
      (v - (MU[i] as number)) *
        ((S * S) / Math.sqrt(S * S + sigmaMin ** 2) / Math.sqrt(S * S + sigmaMax ** 2)),
  );

async function errorAt(fn: typeof sampleEuler, steps: number): Promise<number> {
  const sigmas = karrasSigmas(SD1_SCHEDULE, steps);
  const x = xT(sigmas[0] as number);
  const want = closedForm(x, sigmas[0] as number, sigmas[steps - 1] as number);
  const got = await fn(x, { model: exact, sigmas, noise: () => new Float32Array(4) });
  return Math.max(...want.map((w, i) => Math.abs(w - (got[i] as number))));
}

describe('deterministic samplers converge to the closed form', () => {
  it('Euler at first order: doubling the steps halves the error', async () => {
    const e = [
      await errorAt(sampleEuler, 40),
      await errorAt(sampleEuler, 80),
      await errorAt(sampleEuler, 160),
    ];
    expect(e[0]).toBeLessThan(0.1);
    expect(Math.log2((e[1] as number) / (e[2] as number))).toBeCloseTo(1, 0);
  });

  it('DPM++ 2M at second order: doubling the steps quarters the error', async () => {
    const e = [
      await errorAt(sampleDpmpp2m, 20),
      await errorAt(sampleDpmpp2m, 40),
      await errorAt(sampleDpmpp2m, 80),
    ];
    expect(e[2]).toBeLessThan(2e-3);
    expect(Math.log2((e[1] as number) / (e[2] as number))).toBeCloseTo(2, 0);
  });
});

describe('Euler a', () => {
  it('ancestral step splits σ_next into σ_down and σ_up with σ_down² + σ_up² = σ_next²', () => {
    const { sigmaDown, sigmaUp } = ancestralStep(10, 5);
    expect(sigmaUp).toBeCloseTo(Math.sqrt((25 * 75) / 100), 12);
    expect(sigmaDown ** 2 + sigmaUp ** 2).toBeCloseTo(25, 10);
    expect(ancestralStep(10, 0)).toEqual({ sigmaDown: 0, sigmaUp: 0 });
  });

  it('adds σ_up·noise after each step but the last, drawing one noise per step', async () => {
    const sigmas = Float32Array.from([2, 1, 0]);
    let draws = 0;
    const noise = () => {
      draws++;
      return Float32Array.from([1, 1, 1, 1]);
    };
    const zero: Denoiser = async (x) => new Float32Array(x.length);
    const after: number[] = [];
    const x = await sampleEulerAncestral(Float32Array.from([2, 2, 2, 2]), {
      model: zero,
      sigmas,
      noise,
      onStep: (_i, xi) => {
        after.push(xi[0] as number);
      },
    });
    // step 1: σ_up = √(1·(4−1)/4) = √3/2, σ_down = ½; x = 2 + (2 − 0)/2·(½ − 2) + σ_up·1
    // step 2 ends at σ = 0: x = den = 0, and no noise is drawn
    expect(after[0]).toBeCloseTo(0.5 + Math.sqrt(3) / 2, 6);
    expect(draws).toBe(1);
    assertClose(x, [0, 0, 0, 0], { atol: 0 });
  });
});

describe('sampler table', () => {
  it('resolves Automatic as A1111 does', () => {
    expect(SAMPLER_INFO['DPM++ 2M'].automatic).toBe('Karras');
    expect(SAMPLER_INFO['DPM++ 2M SDE'].automatic).toBe('Exponential');
    expect(SAMPLER_INFO.Euler.automatic).toBe('Automatic');
  });

  it('DDIM timesteps: 20 steps → 1, 51, …, 951; 30 steps → 31 entries (1000 // 30 = 33)', () => {
    expect(ddimTimesteps(20)).toEqual(Array.from({ length: 20 }, (_, i) => 1 + 50 * i));
    expect(ddimTimesteps(30)).toHaveLength(31);
    expect(ddimTimesteps(30).at(-1)).toBe(991);
  });

  it('DDIM timesteps: 1000 steps is the whole grid; more, or a fraction, is refused instead of looping', () => {
    expect(ddimTimesteps(1000)).toEqual(Array.from({ length: 1000 }, (_, i) => Math.min(i + 1, 999)));
    // 1000 // 1001 = 0: a zero stride used to grow the grid until V8 ran out of memory
    expect(() => ddimTimesteps(1001)).toThrow(
      new RangeError('DDIM needs a whole number of steps from 1 to 1000 (got 1001)'),
    );
    expect(() => ddimTimesteps(0)).toThrow(RangeError);
    expect(() => ddimTimesteps(2.5)).toThrow(RangeError);
  });

  it('Uniform with Euler is the sampler’s own schedule', () => {
    assertClose([uniformSigmas(SD1_SCHEDULE, 5)[0] as number], [SD1_SCHEDULE.sigmaMax], {
      atol: 0,
      rtol: 2e-7,
    });
  });
});

describe('stochastic samplers draw from the data distribution', () => {
  // Reference: with the exact denoiser for N(m, s²), a correct sampler started from σ_max·noise
  // returns samples of N(m, s²) (up to the negligible s² missing from the start). Every element of
  // a large latent is an independent chain, so one run gives 20 000 samples.
  const N = 20_000;
  const m = 0.3;
  const s = 0.8;
  const gaussian: Denoiser = async (x, sigma) => {
    const k = (s * s) / (s * s + sigma * sigma);
    return Float32Array.from(x, (v) => m + k * (v - m));
  };
  async function moments(fn: typeof sampleEuler, steps: number) {
    const sigmas = karrasSigmas(SD1_SCHEDULE, steps);
    const rng = createGenerator('cpu', 1234);
    const x = Float32Array.from(rng.randn(N), (n) => n * (sigmas[0] as number));
    const out = await fn(x, { model: gaussian, sigmas, noise: () => rng.randn(N) });
    const mean = out.reduce((a, v) => a + v, 0) / N;
    const std = Math.sqrt(out.reduce((a, v) => a + (v - mean) ** 2, 0) / N);
    return { mean, std };
  }

  // Euler a is first order in its noise too: its spread error halves with each doubling of the
  // steps (0.15 at 20 steps, 0.006 at 640), so it is checked where that error is small.
  it.each([
    ['Euler a', sampleEulerAncestral, 640],
    ['DPM++ 2M SDE', sampleDpmpp2mSde, 40],
    ['DPM++ 2M (deterministic, for comparison)', sampleDpmpp2m, 40],
  ] as const)('%s: mean and standard deviation of N(0.3, 0.8²) at %i steps', async (_name, fn, steps) => {
    const { mean, std } = await moments(fn, steps);
    expect(Math.abs(mean - m)).toBeLessThan((4 * s) / Math.sqrt(N)); // 4 standard errors
    expect(Math.abs(std / s - 1)).toBeLessThan(0.03);
  });

  it('the noise matters: DPM++ 2M SDE without its noise term does not reach the data spread', async () => {
    const sigmas = karrasSigmas(SD1_SCHEDULE, 40);
    const x = Float32Array.from(createGenerator('cpu', 1).randn(N), (n) => n * (sigmas[0] as number));
    const out = await sampleDpmpp2mSde(x, { model: gaussian, sigmas, noise: () => new Float32Array(N) });
    const mean = out.reduce((a, v) => a + v, 0) / N;
    const std = Math.sqrt(out.reduce((a, v) => a + (v - mean) ** 2, 0) / N);
    expect(std / s).toBeLessThan(0.9);
  });
});
