import { describe, expect, it } from 'vitest';
import { fromHalfBits, roundToHalf, toHalfBits } from '../../src/diffusion/model/fp16.ts';

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
