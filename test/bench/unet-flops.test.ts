// The UNet's arithmetic in closed form against the count taken by hooks on ldm's own modules
// (`python3 bench/count_flops.py --latents 64,128,48x80,40x24`, torch 2.13, ldm as A1111 pins it,
// SDPA attention: the figures below are what it printed), and the MatMul peak's arithmetic.
import { expect, it } from 'vitest';
import { measureMatmulPeak } from '../../bench/matmul-peak.ts';
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
};

it.each(Object.entries(LDM_HOOKS))('counts what ldm computes at %s', (shape, ref) => {
  const [h = 0, w = 0] = shape.split('x').map(Number);
  const got = unetGflop(SD15, h, w);
  for (const k of ['attention', 'conv1x1', 'conv3x3', 'linear'] as const) {
    expect(got[k]).toBeCloseTo(ref[k], 6);
  }
  expect(got.total).toBeCloseTo(ref.attention + ref.conv1x1 + ref.conv3x3 + ref.linear, 6);
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

it('measures the MatMul peak as 2n³ over the fastest run', async () => {
  const peak = await measureMatmulPeak(1, 128, 2);
  expect(peak).toMatchObject({ n: 128, threads: 1 });
  // 2·128³ FLOP takes well over a microsecond and under a second on any CPU
  expect(peak.gflops).toBeGreaterThan((2 * 128 ** 3) / 1e9);
  expect(peak.gflops).toBeLessThan((2 * 128 ** 3) / 1e-6 / 1e9);
});
