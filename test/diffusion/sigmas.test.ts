// Reference values: shared semantics doc §1–2 (A1111 v1.10.1 + k-diffusion ab527a9, torch float32).
import { describe, expect, it } from 'vitest';
import { SD1_SCHEDULE as S } from '../../src/diffusion/schedule.ts';
import { exponentialSigmas, karrasSigmas, uniformSigmas } from '../../src/diffusion/sigmas.ts';
import { assertClose } from '../support/assert-close.ts';

const REL = { atol: 0, rtol: 2e-7 };

describe('SD 1.x discrete schedule', () => {
  it('has the doc’s σmin and σmax', () => {
    expect(S.sigmaMin).toBe(Math.fround(0.029167533));
    expect(S.sigmaMax).toBe(Math.fround(14.614642));
  });

  it('sigma_to_t gives the fractional timestep and t_to_sigma inverts it', () => {
    assertClose([S.sigmaToT(11.7253685)], [961.7328], { atol: 2e-4 });
    expect(S.sigmaToT(S.sigmaMax)).toBe(999);
    expect(S.sigmaToT(S.sigmaMin)).toBe(0);
    for (const t of [0, 1.5, 100.25, 500, 998.75])
      assertClose([S.sigmaToT(S.tToSigma(t))], [t], { atol: 2e-3 });
  });

  it('quantized sigma_to_t picks the nearest table index', () => {
    expect(S.sigmaToNearestT(11.7253685)).toBe(962);
    expect(S.sigmaToNearestT(S.sigmas[500] as number)).toBe(500);
  });
});

describe('sigma schedules', () => {
  it('Karras, 20 steps', () => {
    const s = karrasSigmas(S, 20);
    expect(s).toHaveLength(21);
    assertClose(s.subarray(0, 4), [14.614643, 11.7253685, 9.340207, 7.3836274], REL);
    assertClose(s.subarray(18), [0.0484819, 0.02916754, 0], { atol: 1e-9, rtol: 2e-7 });
  });

  it('Uniform (the Euler default), 20 steps', () => {
    const s = uniformSigmas(S, 20);
    assertClose(s.subarray(0, 3), [14.61464, 10.74681, 8.08152], { atol: 1e-5 });
    assertClose(s.subarray(19), [0.02917, 0], { atol: 1e-5 });
    assertClose([s[18] as number], [0.23216], { atol: 1e-5 });
  });

  it('Exponential runs log-linearly from σmax to σmin', () => {
    const s = exponentialSigmas(S, 10);
    assertClose([s[0] as number, s[9] as number, s[10] as number], [S.sigmaMax, S.sigmaMin, 0], REL);
    const ratio = (s[1] as number) / (s[0] as number);
    for (let i = 1; i < 9; i++)
      assertClose([(s[i + 1] as number) / (s[i] as number)], [ratio], { atol: 1e-5 });
  });

  it('the hires example: 20 steps at denoise 0.7 slice Karras(28) from index 8', () => {
    const s = karrasSigmas(S, 28).subarray(8);
    expect(s).toHaveLength(21);
    assertClose([s[0] as number], [3.8213322], REL);
  });
});
