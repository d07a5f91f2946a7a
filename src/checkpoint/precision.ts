// Which precision a checkpoint is imported in when nobody says: what the execution providers run
// fastest. fp16 halves the size and is what CUDA, TensorRT and DirectML kernels are fast at; the
// CPU provider has few fp16 kernels (onnxruntime casts around the rest), so the CPU gets fp32.
// webgpu gets fp32 too: on an H100 its fp16 UNet was only 0.89× the fp32 time, but 2.9e-2 off the
// float32 result (PyTorch's own fp16: 2.3e-3; webgpu's fp32: 8e-6), a visibly different picture
// for the same seed. MODEL_DTYPE=fp16 still chooses it.
import { HALF_PRECISION_PROVIDERS, inGroup } from '../providers.ts';
import type { Precision } from './onnx-net.ts';

export function defaultPrecision(providers: readonly string[]): Precision {
  return providers.some((p) => inGroup(HALF_PRECISION_PROVIDERS, p)) ? 'fp16' : 'fp32';
}

export function choosePrecision(
  setting: 'auto' | Precision | undefined,
  providers: readonly string[],
): Precision {
  return setting === undefined || setting === 'auto' ? defaultPrecision(providers) : setting;
}
