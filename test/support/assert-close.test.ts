import { describe, expect, it } from 'vitest';
import { assertClose, closeFailure } from './assert-close.ts';

describe('assertClose', () => {
  it('passes within atol and fails just outside it, naming the index', () => {
    expect(closeFailure([1, 2.0000009], [1, 2], { atol: 1e-6 })).toBeUndefined();
    expect(closeFailure([1, 2.000002], [1, 2], { atol: 1e-6 })).toMatch(/^index 1: got 2.000002/);
  });
  it('scales rtol with the expected magnitude', () => {
    expect(closeFailure([1001], [1000], { atol: 0, rtol: 1e-3 })).toBeUndefined();
    expect(closeFailure([1.0011], [1], { atol: 0, rtol: 1e-3 })).toMatch(/^index 0: got 1.0011, expected 1 /);
  });
  it('rejects NaN and length mismatches', () => {
    expect(closeFailure([Number.NaN], [0], { atol: 1 })).toMatch(/^index 0: got NaN/);
    expect(closeFailure([0, 0], [0], { atol: 1 })).toMatch(/length/);
    expect(() => assertClose([0.5], [0], { atol: 0.1 })).toThrow(/index 0/);
  });
});
