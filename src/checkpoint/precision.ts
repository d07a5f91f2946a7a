// Which precision a checkpoint is imported in when nobody says: what the execution providers run
// fastest. fp16 halves the size and is what CUDA, TensorRT and DirectML kernels are fast at; the
// CPU provider has few fp16 kernels (onnxruntime casts around the rest), so the CPU gets fp32.
import type { Precision } from './onnx-net.ts';

const HALF_PROVIDERS = new Set(['cuda', 'tensorrt', 'dml']);

export function defaultPrecision(providers: readonly string[]): Precision {
  return providers.some((p) => HALF_PROVIDERS.has(p)) ? 'fp16' : 'fp32';
}

export function choosePrecision(
  setting: 'auto' | Precision | undefined,
  providers: readonly string[],
): Precision {
  return setting === undefined || setting === 'auto' ? defaultPrecision(providers) : setting;
}
