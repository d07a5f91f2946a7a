// Reference: the closed-form probability-flow solution for Gaussian data N(mu, s²I) under the
// exact denoiser D(x;σ) = mu + s²/(s²+σ²)·(x − mu): x(σ) = mu + (x_T − mu)·√(s² + σ²)/√(s² + σ_T²).
// A schedule ends …, σ_min, 0 and the last step returns D(x(σ_min); σ_min), so that is the limit:
// mu + (x_T − mu)·s²/(√(s² + σ_min²)·√(s² + σ_T²))  (→ the x(0) formula as σ_min → 0).
import { describe, expect, it } from 'vitest';
import {
  ancestralStep,
  type Denoiser,
  ddimTimesteps,
  SAMPLER_INFO,
  sampleDpmpp2m,
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
    const x = await sampleEulerAncestral(Float32Array.from([2, 2, 2, 2]), { model: zero, sigmas, noise });
    // step 1: σ_up = √(1·3/4), σ_down = ½; x = 2·(½/2) + σ_up = ½ + 0.8660; step 2 → den = 0
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

  it('Uniform with Euler is the sampler’s own schedule', () => {
    assertClose([uniformSigmas(SD1_SCHEDULE, 5)[0] as number], [SD1_SCHEDULE.sigmaMax], {
      atol: 0,
      rtol: 2e-7,
    });
  });
});
