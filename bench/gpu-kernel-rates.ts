// A GPU provider's own ceiling, as onnxruntime reaches it there: the rate of a chain of large
// MatMuls and of a chain of 3×3 convolutions at the UNet's first level (320 channels, 128×128, batch
// 2: a 1024-pixel image's latents). Each chain is fed from one small input, expanded on the device,
// and summed to one number, so nothing crosses the bus but those two: a 4096² float32 operand fed
// from the host is 64 MB a run, which would time PCIe, not the GPU. A UNet step's arithmetic over
// its time, against these, says whether our graph or the provider's kernels hold the step back.
import * as ort from 'onnxruntime-node';
import type { Precision } from '../src/checkpoint/onnx-net.ts';
import { floatTensor } from '../src/diffusion/model/float-tensor.ts';
import { toHalf } from '../src/diffusion/model/fp16.ts';
import { GraphBuilder } from '../src/diffusion/model/onnx-graph.ts';
import { onnxruntimeReason } from '../src/diffusion/model/sd-model.ts';
import { wave } from './unet-inputs.ts';

export interface KernelSizes {
  /** The side of the square MatMul operands. */
  n: number;
  /** Convolution channels (in and out) and the side of the square map, batch 2. */
  conv: { channels: number; side: number };
  /** MatMuls or convolutions one after the other in a run. */
  chain: number;
}

/** 1.1 TFLOP of MatMul and 0.48 of convolution a run: tens of ms on an H100's CUDA cores. */
export const GPU_KERNEL_SIZES: KernelSizes = { n: 4096, conv: { channels: 320, side: 128 }, chain: 8 };

export interface GpuKernelRates extends KernelSizes {
  dtype: Precision;
  /** TFLOP/s of the fastest timed run. */
  matmulTflops: number;
  convTflops: number;
}

export interface KernelChain {
  model: Uint8Array;
  feeds: Record<string, ort.Tensor>;
  /** FLOP of one run (2 per multiply-add). */
  flop: number;
}

const elemType = (dtype: Precision) => (dtype === 'fp16' ? 'float16' : 'float32');

function filled(g: GraphBuilder, dtype: Precision, value: number, dims: number[]): string {
  const values = new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(value);
  const bytes = dtype === 'fp16' ? toHalf(values) : values;
  return g.constTensor(elemType(dtype), dims, new Uint8Array(bytes.buffer));
}

/** The chain's last output averaged in float32, the graph's one output. */
function meanOut(g: GraphBuilder, dtype: Precision, x: string): Uint8Array {
  const wide = dtype === 'fp16' ? g.cast(x, 'float32') : x;
  g.op('ReduceMean', [wide], { keepdims: 0 }, 'mean');
  g.output('mean', 'float32', []);
  return g.encode('kernel-chain');
}

/**
 * `row` ([1, n]) expanded to n×n, then `chain` MatMuls by the same n×n weight, every entry 2/n: each
 * product's entries are twice a row's mean, so the result's mean is 2^chain times the mean of `row`
 * (a closed form the test holds; a constant weight, as the UNet's are, so the provider may pack it).
 */
export function matmulChain(dtype: Precision, s: KernelSizes): KernelChain {
  const { n, chain } = s;
  const g = new GraphBuilder();
  g.input('row', elemType(dtype), [1, n]);
  const w = filled(g, dtype, 2 / n, [n, n]);
  let x = g.op('Expand', ['row', g.constInt64([n, n])]);
  for (let i = 0; i < chain; i++) x = g.op('MatMul', [x, w]);
  return {
    model: meanOut(g, dtype, x),
    feeds: { row: floatTensor(elemType(dtype), wave(n, 0.9, 0.5), [1, n]) },
    flop: 2 * n ** 3 * chain,
  };
}

/** `pixel` ([1, c, 1, 1]) expanded to [2, c, side, side], then `chain` 3×3 convolutions (padding 1). */
export function convChain(dtype: Precision, s: KernelSizes): KernelChain {
  const { channels: c, side } = s.conv;
  const g = new GraphBuilder();
  g.input('pixel', elemType(dtype), [1, c, 1, 1]);
  const w = filled(g, dtype, 1 / (9 * c), [c, c, 3, 3]);
  let x = g.op('Expand', ['pixel', g.constInt64([2, c, side, side])]);
  for (let i = 0; i < s.chain; i++) x = g.op('Conv', [x, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  return {
    model: meanOut(g, dtype, x),
    feeds: { pixel: floatTensor(elemType(dtype), wave(c, 0.9, 0.5), [1, c, 1, 1]) },
    flop: 2 * 2 * side * side * c * c * 9 * s.chain,
  };
}

/** TFLOP/s of the fastest of `runs` timed runs, after one untimed (shader builds, weight packing). */
async function tflops(
  k: KernelChain,
  providers: ort.InferenceSession.SessionOptions['executionProviders'],
  runs: number,
): Promise<number> {
  const session = await ort.InferenceSession.create(k.model, {
    executionProviders: providers,
    logSeverityLevel: 3,
  }).catch((err) => {
    throw new Error(onnxruntimeReason(err).split('\n')[0]);
  });
  try {
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i <= runs; i++) {
      const t = performance.now();
      await session.run(k.feeds);
      if (i > 0) best = Math.min(best, performance.now() - t);
    }
    return k.flop / (best / 1000) / 1e12;
  } finally {
    await session.release();
  }
}

export async function measureGpuKernelRates(
  dtype: Precision,
  providers: ort.InferenceSession.SessionOptions['executionProviders'],
  sizes: KernelSizes = GPU_KERNEL_SIZES,
  runs = 5,
): Promise<GpuKernelRates> {
  return {
    dtype,
    ...sizes,
    matmulTflops: await tflops(matmulChain(dtype, sizes), providers, runs),
    convTflops: await tflops(convChain(dtype, sizes), providers, runs),
  };
}

/**
 * Throws onnxruntime's reason when `providers` cannot start: one small MatMul on them and nothing
 * else. The model loader falls back to the CPU instead, so without this check a GPU bench on a
 * host without the GPU's Vulkan part times the CPU for minutes of a lent GPU.
 */
export async function checkProvidersStart(
  providers: ort.InferenceSession.SessionOptions['executionProviders'],
): Promise<void> {
  await tflops(matmulChain('fp32', { n: 8, conv: { channels: 8, side: 8 }, chain: 1 }), providers, 1);
}
