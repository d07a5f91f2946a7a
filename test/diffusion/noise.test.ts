// Reference: test/fixtures/rng-vectors.json (torch 1.13 CPU randn; A1111 rng_philox.py for NV).
import { describe, expect, it } from 'vitest';
import { createGenerator, ImageRng, type NoiseSource } from '../../src/diffusion/noise/image-rng.ts';
import { assertClose } from '../support/assert-close.ts';
import { readFixture } from '../support/fixtures.ts';

interface Draw {
  n: number;
  first16: number[];
  last16: number[];
  at: Record<string, number>;
  sum: number;
  sumsq: number;
  all?: number[];
}
interface Vector {
  seed: number;
  shape: number[];
  first: Draw;
  next: Draw;
}
const vectors = readFixture<Record<NoiseSource, Vector[]>>('rng-vectors.json');
const TOL = { atol: 2e-6 };

function checkDraw(actual: Float32Array, expected: Draw) {
  expect(actual.length).toBe(expected.n);
  assertClose(actual.subarray(0, 16), expected.first16, TOL);
  assertClose(actual.subarray(actual.length - 16), expected.last16, TOL);
  for (const [i, v] of Object.entries(expected.at)) assertClose([actual[Number(i)] as number], [v], TOL);
  if (expected.all) assertClose(actual, expected.all, TOL);
  let sum = 0;
  let sumsq = 0;
  for (const v of actual) {
    sum += v;
    sumsq += v * v;
  }
  assertClose([sum, sumsq], [expected.sum, expected.sumsq], { atol: 1e-6 * expected.n, rtol: 1e-6 });
}

for (const source of ['cpu', 'nv'] as const) {
  describe(`${source} noise matches the reference vectors`, () => {
    for (const v of vectors[source]) {
      it(`seed ${v.seed}, shape ${v.shape.join('×')}: first and next draw`, () => {
        const n = v.shape.reduce((a, b) => a * b, 1);
        const g = createGenerator(source, v.seed);
        checkDraw(g.randn(n), v.first);
        checkDraw(g.randn(n), v.next);
      });
    }
  });
}

describe('numbers quoted in the semantics doc', () => {
  it('cpu seed 0 (4,8,8) and nv seed 0 (3,4)', () => {
    assertClose(
      createGenerator('cpu', 0).randn(256).subarray(0, 4),
      [-1.1258398, -1.1523602, -0.25057858, -0.4338788],
      {
        atol: 1e-7,
      },
    );
    assertClose(
      createGenerator('nv', 0).randn(12).subarray(0, 4),
      [-0.9246624, -0.42534396, -2.6438458, 0.14518388],
      {
        atol: 1e-7,
      },
    );
  });
});

describe('ImageRng', () => {
  const shape = [4, 8, 8] as const;
  const byseed = (source: NoiseSource, seed: number) =>
    vectors[source].find((v) => v.seed === seed && v.shape.join() === '4,8,8') as Vector;

  it('first() is the first draw of the seed and next() continues the same stream', () => {
    const rng = new ImageRng(shape, { source: 'nv', seed: 42 });
    assertClose(rng.first(), byseed('nv', 42).first.all ?? [], TOL);
    assertClose(rng.next(), byseed('nv', 42).next.all ?? [], TOL);
  });

  it('ENSD reseeds the stream after the first draw with seed + ENSD', () => {
    for (const source of ['cpu', 'nv'] as const) {
      const rng = new ImageRng(shape, { source, seed: 42, ensd: 31337 - 42 });
      assertClose(rng.first(), byseed(source, 42).first.all ?? [], TOL);
      assertClose(rng.next(), byseed(source, 31337).first.all ?? [], TOL);
    }
  });

  it('variation strength 1 gives the variation seed’s noise; strength 0.5 lies between', () => {
    const full = new ImageRng(shape, { source: 'cpu', seed: 0, subseed: 1, subseedStrength: 1 }).first();
    assertClose(full, byseed('cpu', 1).first.all ?? [], { atol: 1e-5 });
    const half = new ImageRng(shape, { source: 'cpu', seed: 0, subseed: 1, subseedStrength: 0.5 }).first();
    const a = Float32Array.from(byseed('cpu', 0).first.all ?? []);
    const b = Float32Array.from(byseed('cpu', 1).first.all ?? []);
    // closed form at 0.5: both weights are sin(ω/2)/sin(ω) = 1/(2·cos(ω/2)), cos ω = the column's cosine
    const [, h, w] = shape;
    for (const [ci, wi] of [
      [0, 0],
      [3, 7],
    ] as const) {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let hi = 0; hi < h; hi++) {
        const k = (ci * h + hi) * w + wi;
        dot += (a[k] as number) * (b[k] as number);
        na += (a[k] as number) ** 2;
        nb += (b[k] as number) ** 2;
      }
      const weight = 1 / (2 * Math.cos(Math.acos(dot / Math.sqrt(na * nb)) / 2));
      for (let hi = 0; hi < h; hi++) {
        const k = (ci * h + hi) * w + wi;
        assertClose([half[k] as number], [weight * ((a[k] as number) + (b[k] as number))], { atol: 1e-5 });
      }
    }
  });
});
