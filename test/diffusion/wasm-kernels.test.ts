import { describe, expect, it } from 'vitest';
import { toHalfBits } from '../../src/diffusion/model/fp16.ts';
import { jsKernels, StepArena } from '../../src/diffusion/step-arena.ts';

// A latent-like spread of values: normal-ish, some large, some tiny, some exactly 0.
function fill(a: Float32Array, seed: number): Float32Array {
  let s = seed;
  for (let k = 0; k < a.length; k++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const r = s / 2 ** 32;
    a[k] =
      k % 97 === 0 ? 0 : k % 89 === 0 ? (r - 0.5) * 1e-6 : k % 83 === 0 ? (r - 0.5) * 1e4 : (r - 0.5) * 6;
  }
  return a;
}

const same = (a: Float32Array, b: Float32Array) => {
  expect(a.length).toBe(b.length);
  // bit for bit (Object.is tells −0 from 0)
  const diff = a.findIndex((v, k) => !Object.is(v, b[k]));
  expect(diff).toBe(-1);
};

describe('StepArena kernels give the JS loops bit for bit', () => {
  for (const n of [4 * 8 * 8, 4 * 64 * 64]) {
    const arena = new StepArena(16 * 4 * n);
    const k = arena.kernels;
    const x = fill(arena.f32(n), 1);
    const out = fill(arena.f32(2 * n), 2);
    const den = arena.f32(n);
    const old = fill(arena.f32(n), 3);
    const xj = Float32Array.from(x);
    const outj = Float32Array.from(out);
    const denj = new Float32Array(n);
    const oldj = Float32Array.from(old);
    expect([x, out, den, old].every((a) => arena.holds(a))).toBe(true);
    expect(arena.holds(xj)).toBe(false);

    it(`combine, ${n}`, () => {
      for (const [sigma, cfg] of [
        [14.614642, 7],
        [0.029167, 1.5],
        [3.3, 0],
      ] as const) {
        k.combine(den, x, sigma, cfg, out, out, n, n);
        jsKernels.combine(denj, xj, sigma, cfg, outj, outj, n, n);
        same(den, denj);
      }
    });

    it(`scaleRows, one and two copies, ${n}`, () => {
      for (const copies of [1, 2]) {
        out.fill(0);
        outj.fill(0);
        k.scaleRows(x, 0.0682, out, n, copies);
        jsKernels.scaleRows(xj, 0.0682, outj, n, copies);
        same(out, outj);
      }
    });

    it(`sampler updates, ${n}`, () => {
      k.combine(den, x, 2.5, 7, fill(out, 4), out, n, n);
      denj.set(den);
      k.euler(x, den, 2.5, -0.37);
      jsKernels.euler(xj, denj, 2.5, -0.37);
      same(x, xj);
      k.dpm1(x, den, 0.81, 0.19);
      jsKernels.dpm1(xj, denj, 0.81, 0.19);
      same(x, xj);
      k.dpm2(x, den, old, 0.77, 0.23, 1.61, 0.61);
      jsKernels.dpm2(xj, denj, oldj, 0.77, 0.23, 1.61, 0.61);
      same(x, xj);
    });
  }

  it('combineHalf, eps as every float16 pattern (NaN, inf, subnormal, ±0 among them)', () => {
    const n = 32768;
    const arena = new StepArena(16 * 4 * n);
    const x = fill(arena.f32(n), 7);
    const eps = arena.u16(2 * n);
    for (let k = 0; k < eps.length; k++) eps[k] = (k * 40503 + 17) & 0xffff;
    const den = arena.f32(n);
    const denj = new Float32Array(n);
    for (const [sigma, cfg] of [
      [14.6, 7],
      [0.03, 2.5],
    ] as const) {
      arena.kernels.combineHalf(den, x, sigma, cfg, eps, eps, n, n);
      jsKernels.combineHalf(denj, Float32Array.from(x), sigma, cfg, eps, eps, n, n);
      same(den, denj);
    }
  });

  it('toHalf gives toHalfBits for every value: normal, 0, subnormal, overflow, inf, NaN', () => {
    const n = 4 * 64 * 64;
    const arena = new StepArena(8 * n);
    const src = fill(arena.f32(n), 9);
    const specials = [0, -0, 1e-5, -3e-7, 6.1e-5, 65504, 65520, 1e6, -1e9, Infinity, -Infinity, Number.NaN];
    specials.forEach((v, q) => {
      src[100 + 7 * q] = v;
    });
    // a run of small values, and the very last element out of range
    for (let q = 500; q < 530; q++) src[q] = (q - 515) * 1e-6;
    src[n - 1] = 0;
    const dst = arena.u16(n);
    expect(arena.holds(src) && arena.holds(dst)).toBe(true);
    arena.kernels.toHalf(src, dst, n);
    const want = Uint16Array.from(src, (v) => toHalfBits(v));
    expect(dst.findIndex((h, k) => h !== want[k])).toBe(-1);
  });

  it('arrays outside the arena, or of odd length, go through the JS loops', () => {
    const arena = new StepArena(1024);
    const inside = fill(arena.f32(7), 5);
    const outside = fill(new Float32Array(7), 5);
    const a = Float32Array.from(inside);
    arena.kernels.dpm1(inside, outside, 0.5, 0.25);
    jsKernels.dpm1(a, outside, 0.5, 0.25);
    same(inside, a);
  });

  it('refuses to hand out more than it was sized for', () => {
    const arena = new StepArena(65536);
    arena.f32(16384);
    expect(() => arena.f32(1)).toThrow(RangeError);
  });
});
