import { describe, expect, it } from 'vitest';
import {
  fromHalf,
  fromHalfBits,
  fromHalfInto,
  roundToHalf,
  toHalfBits,
  toHalfInto,
} from '../../src/diffusion/model/fp16.ts';

describe('float16 conversion', () => {
  it('encodes known values (IEEE 754 binary16)', () => {
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff);
    expect(toHalfBits(1e6)).toBe(0x7c00);
    expect(toHalfBits(2 ** -24)).toBe(0x0001);
    expect(toHalfBits(0.1)).toBe(0x2e66);
    expect(fromHalfBits(0x3555)).toBeCloseTo(0.333251953125, 12);
  });

  it('rounds to nearest even, as the doc’s timestep example: 961.7328 → 961.5', () => {
    expect(roundToHalf(961.7328)).toBe(961.5);
    expect(roundToHalf(961.75)).toBe(962); // tie → even mantissa
    expect(roundToHalf(2049)).toBe(2048);
  });
});

describe('bulk float16 conversion', () => {
  // every kind of value: normal, subnormal, ties, overflow, underflow, ±0, ±inf, NaN, and the
  // boundaries of the inline path (2^-14, 65504)
  const values = [
    0,
    -0,
    1,
    -2,
    0.1,
    961.7328,
    961.75,
    2049,
    65504,
    65519,
    65520,
    1e6,
    -1e6,
    2 ** -14,
    2 ** -15,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -26,
    1e-10,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.NaN,
    ...Array.from({ length: 4000 }, (_, k) => Math.sin(k * 12.9898) * 10 ** ((k % 13) - 6)),
  ];

  it('toHalfInto gives toHalfBits for every value, from an offset view', () => {
    const backing = new Float32Array(values.length + 3);
    const src = backing.subarray(3);
    src.set(values);
    const dst = new Uint16Array(values.length);
    toHalfInto(src, dst);
    for (let i = 0; i < values.length; i++) {
      if (dst[i] !== toHalfBits(src[i] as number)) {
        throw new Error(`index ${i}: ${src[i]} → ${dst[i]}, want ${toHalfBits(src[i] as number)}`);
      }
    }
  });

  it('fromHalfInto gives fromHalfBits for all 65 536 patterns', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, h) => h);
    const out = fromHalf(all);
    for (let h = 0; h < 65536; h++) {
      const want = Math.fround(fromHalfBits(h));
      if (!Object.is(out[h], want)) throw new Error(`pattern ${h}: ${out[h]}, want ${want}`);
    }
  });

  it('converts only the first n values when asked', () => {
    const dst = new Float32Array(4);
    fromHalfInto(Uint16Array.of(0x3c00, 0x4000, 0x4200, 0x4400), dst, 2);
    expect([...dst]).toEqual([1, 2, 0, 0]);
    const half = new Uint16Array(3);
    toHalfInto(Float32Array.of(1, 2, 3), half, 2);
    expect([...half]).toEqual([0x3c00, 0x4000, 0]);
  });
});

describe('toHalfInto at an offset', () => {
  it('writes dst[at..at+n) and nothing else', () => {
    const dst = new Uint16Array(5);
    toHalfInto(Float32Array.of(1, -2), dst, 2, 3);
    expect([...dst]).toEqual([0, 0, 0, 0x3c00, 0xc000]);
  });
});
