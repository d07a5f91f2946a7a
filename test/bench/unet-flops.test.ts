// The UNet's arithmetic in closed form against the count taken by hooks on ldm's own modules
// (`python3 bench/count_flops.py --latents 64,128,48x80,40x24,36,65,8x72`, torch 2.13, ldm as A1111
// pins it with A1111's resizing concatenation, SDPA attention: the figures below are what it
// printed), and the kernel rates' arithmetic.
import { expect, it } from 'vitest';
import { fastestRate, measureKernelRates, measureKernelRatesApart } from '../../bench/kernel-rates.ts';
import { unetGflop } from '../../bench/unet-flops.ts';
import type { UnetStructure } from '../../src/checkpoint/structure.ts';

/** v1-inference.yaml's UNet, as the importer reads it from an SD 1.5 checkpoint. */
const SD15: UnetStructure = {
  inChannels: 4,
  outChannels: 4,
  modelChannels: 320,
  channelMult: [1, 2, 4, 4],
  numResBlocks: [2, 2, 2, 2],
  attention: [true, true, true, false],
  transformerDepth: 1,
  contextDim: 768,
  heads: 8,
};

const LDM_HOOKS: Record<string, { attention: number; conv1x1: number; conv3x3: number; linear: number }> = {
  '64x64': { attention: 252.10454016, conv1x1: 87.2415232, conv3x3: 800.65069056, linear: 466.55012864 },
  '128x128': {
    attention: 3948.28972032,
    conv1x1: 348.9660928,
    conv3x3: 3202.60276224,
    linear: 1848.15386624,
  },
  '48x80': { attention: 221.9931648, conv1x1: 81.788928, conv3x3: 750.6100224, linear: 437.76671744 },
  '40x24': { attention: 15.1252992, conv1x1: 20.447232, conv3x3: 187.6525056, linear: 113.95334144 },
  // sides that halve to an odd number: the upsampled map is resized to its skip's (A1111's cat)
  '36x36': { attention: 26.7838464, conv1x1: 27.8528, conv3x3: 259.49454336, linear: 152.29190144 },
  '65x65': { attention: 270.70505472, conv1x1: 94.3017984, conv3x3: 877.5424512, linear: 502.35981824 },
  '8x72': { attention: 5.84534016, conv1x1: 12.2683392, conv3x3: 112.59150336, linear: 70.77822464 },
};

it.each(Object.entries(LDM_HOOKS))('counts what ldm computes at %s', (shape, ref) => {
  const [h = 0, w = 0] = shape.split('x').map(Number);
  const got = unetGflop(SD15, h, w);
  for (const k of ['attention', 'conv1x1', 'conv3x3', 'linear'] as const) {
    expect(got[k]).toBeCloseTo(ref[k], 6);
  }
  expect(got.total).toBeCloseTo(ref.attention + ref.conv1x1 + ref.conv3x3 + ref.linear, 6);
});

it("sizes the last convolution by the first level's width, as the importer builds it", () => {
  const wide = { ...SD15, channelMult: [2, 2, 4, 4] };
  const narrow = { ...wide, outChannels: 0 };
  // conv_out alone: 2 · batch 2 · 64² · (2·320 in) · 4 out · 9
  expect(unetGflop(wide, 64, 64).conv3x3 - unetGflop(narrow, 64, 64).conv3x3).toBeCloseTo(
    (2 * 2 * 64 * 64 * 640 * 4 * 9) / 1e9,
    9,
  );
});

it('scales with the batch, and self-attention with the square of the tokens', () => {
  const one = unetGflop(SD15, 64, 64, 1);
  const two = unetGflop(SD15, 64, 64, 2);
  expect(two.total).toBeCloseTo(2 * one.total, 6);
  // a transformer deeper by one block adds its attention once more
  const deeper = unetGflop({ ...SD15, transformerDepth: 2 }, 64, 64);
  expect(deeper.attention).toBeCloseTo(2 * two.attention, 6);
  // no attention anywhere but the middle block (8×8 tokens at 64×64 with three downsamplings)
  const none = unetGflop({ ...SD15, attention: [false, false, false, false] }, 64, 64);
  const mid = 64; // tokens
  expect(none.attention).toBeCloseTo((2 * 2 * 2 * (mid * mid + mid * 77) * 1280) / 1e9, 9);
});

it('measures the kernel rates as their FLOP over the fastest run, and takes the faster as the peak', async () => {
  const peak = await measureKernelRates(1, 128, 2, { channels: 16, side: 8 });
  expect(peak).toMatchObject({ n: 128, threads: 1 });
  // 2·128³ FLOP (and 2·2·8²·16²·9 for the convolution) take well over a microsecond and under a
  // second on any CPU
  for (const [rate, flop] of [
    [peak.gflops, 2 * 128 ** 3],
    [peak.convGflops ?? 0, 2 * 2 * 64 * 256 * 9],
  ] as const) {
    expect(rate).toBeGreaterThan(flop / 1e9);
    expect(rate).toBeLessThan(flop / 1e-6 / 1e9);
  }
  // the faster of the two; an older result has the MatMul's alone
  expect(fastestRate({ n: 1, threads: 1, gflops: 7, convGflops: 9 })).toBe(9);
  expect(fastestRate({ n: 1, threads: 1, gflops: 7, convGflops: 5 })).toBe(7);
  expect(fastestRate({ n: 1, threads: 1, gflops: 7 })).toBe(7);
});

it('measures the kernel rates in a process of its own, as --full does', () => {
  const peak = measureKernelRatesApart(1);
  expect(peak).toMatchObject({ n: 2048, threads: 1 });
  expect(peak.gflops).toBeGreaterThan(0);
  expect(peak.convGflops).toBeGreaterThan(0);
}, 120_000);
