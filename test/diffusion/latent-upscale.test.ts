// Reference: test/fixtures/upscale-vectors.json (torch 1.13 CPU F.interpolate, float32).
import { describe, expect, it } from 'vitest';
import { UPSCALERS, type Upscaler, upscaleLatent } from '../../src/diffusion/latent-upscale.ts';
import { assertClose } from '../support/assert-close.ts';
import { readFixture } from '../support/fixtures.ts';

interface Output {
  a1111_name: Upscaler;
  size: [number, number];
  note: string;
  shape: number[];
  values: number[];
  max_abs_diff_vs_float64: number;
}
interface Case {
  input_shape: [number, number, number, number];
  input: number[];
  outputs: Output[];
}
const { cases } = readFixture<{ cases: Case[] }>('upscale-vectors.json');

describe('upscaleLatent matches torch F.interpolate', () => {
  it('the reference covers all six A1111 modes', () => {
    const names = new Set(cases.flatMap((c) => c.outputs.map((o) => o.a1111_name)));
    expect([...names].sort()).toEqual([...UPSCALERS].sort());
  });

  for (const c of cases) {
    const [, ch, h, w] = c.input_shape;
    for (const o of c.outputs) {
      it(`${o.a1111_name}: ${h}×${w} → ${o.size.join('×')} (${o.note})`, () => {
        const out = upscaleLatent(Float32Array.from(c.input), [ch, h, w], o.size, o.a1111_name);
        // float32 torch vs our float64 accumulation: the reference's own float64 gap, plus rounding
        assertClose(out, o.values, { atol: o.max_abs_diff_vs_float64 + 1e-6 });
      });
    }
  }
});
