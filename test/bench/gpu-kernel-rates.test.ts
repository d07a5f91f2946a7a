// The GPU kernel-rate chains (bench/gpu-kernel-rates.ts) do the work they are credited with: run on
// the CPU provider, each chain's one output is its closed form, so no link of the chain was left
// out or folded away, and the FLOP it is divided by is counted from the sizes.
import * as ort from 'onnxruntime-node';
import { expect, it } from 'vitest';
import {
  convChain,
  type KernelChain,
  matmulChain,
  measureGpuKernelRates,
} from '../../bench/gpu-kernel-rates.ts';
import { wave } from '../../bench/unet-inputs.ts';
import { roundToHalf } from '../../src/diffusion/model/fp16.ts';

const sizes = { n: 8, conv: { channels: 4, side: 5 }, chain: 3 };

async function output(k: KernelChain): Promise<number> {
  const session = await ort.InferenceSession.create(k.model, { executionProviders: ['cpu'] });
  try {
    return (await session.run(k.feeds)).mean?.data[0] as number;
  } finally {
    await session.release();
  }
}

const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / xs.length;

/**
 * The conv chain in closed form: the weights are all 1/(9c) and the input is one value per channel
 * over the whole map, so every output channel is the same map: first mean(pixel) × (the 3×3
 * neighbours inside the map) / 9, then each convolution the in-map neighbours' sum / 9.
 */
function convClosedForm(pixel: ArrayLike<number>, side: number, chain: number): number {
  let m: number[] = new Array(side * side).fill(mean(pixel));
  for (let k = 0; k < chain; k++) {
    m = m.map((_, i) => {
      const y = Math.floor(i / side);
      const x = i % side;
      let sum = 0;
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy >= 0 && yy < side && xx >= 0 && xx < side) sum += m[yy * side + xx] as number;
        }
      return sum / 9;
    });
  }
  return mean(m);
}

it('each MatMul by the 2/n matrix makes every entry twice its row mean: the chain gives 2^chain × the mean', async () => {
  const row = wave(sizes.n, 0.9, 0.5);
  const k = matmulChain('fp32', sizes);
  expect(k.flop).toBe(2 * 8 ** 3 * 3);
  expect(await output(k)).toBeCloseTo(8 * mean(row), 6);
  // the half-precision chain sums the half-rounded row (its float16 rounding after each product)
  expect(await output(matmulChain('fp16', sizes))).toBeCloseTo(8 * mean(Array.from(row, roundToHalf)), 3);
  expect(await output(matmulChain('fp32', { ...sizes, chain: 2 }))).toBeCloseTo(4 * mean(row), 6);
});

it('the conv chain gives its closed form, the box sums of the map inside its border', async () => {
  const pixel = wave(sizes.conv.channels, 0.9, 0.5);
  const k = convChain('fp32', sizes);
  // batch 2 × 5² outputs × 4·4·9 multiply-adds × 3 convolutions
  expect(k.flop).toBe(2 * 2 * 25 * 16 * 9 * 3);
  const want = convClosedForm(pixel, sizes.conv.side, sizes.chain);
  expect(want).not.toBeCloseTo(mean(pixel), 3); // the border matters: a chain cut short would show
  expect(await output(k)).toBeCloseTo(want, 6);
  expect(await output(convChain('fp16', sizes))).toBeCloseTo(
    convClosedForm(Array.from(pixel, roundToHalf), sizes.conv.side, sizes.chain),
    3,
  );
  // one convolution fewer is a different number
  expect(await output(convChain('fp32', { ...sizes, chain: 2 }))).not.toBeCloseTo(want, 4);
});

it('measures both rates for a precision on the providers it is given, with the sizes it used', async () => {
  const r = await measureGpuKernelRates('fp32', ['cpu'], sizes, 2);
  expect(r).toMatchObject({ dtype: 'fp32', ...sizes });
  for (const rate of [r.matmulTflops, r.convTflops]) {
    expect(Number.isFinite(rate) && rate > 0).toBe(true);
  }
});

it("a provider that cannot start fails with onnxruntime's reason alone, not its source line", async () => {
  // no Vulkan driver manifest: what a host without the GPU driver's Vulkan part sees, on any
  // machine (the loader reads it when onnxruntime first asks Dawn for an adapter)
  const saved = { a: process.env.VK_ICD_FILENAMES, b: process.env.VK_DRIVER_FILES };
  process.env.VK_ICD_FILENAMES = process.env.VK_DRIVER_FILES = '/nonexistent/no-such-icd.json';
  try {
    await expect(measureGpuKernelRates('fp16', ['webgpu'], sizes, 1)).rejects.toThrow(
      /^Failed to get a WebGPU adapter: [^\n]+$/,
    );
  } finally {
    for (const [k, v] of [
      ['VK_ICD_FILENAMES', saved.a],
      ['VK_DRIVER_FILES', saved.b],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});
