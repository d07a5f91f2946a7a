// Float tensors at the onnxruntime boundary: the pipeline works in float32, an fp16 export wants
// and returns float16 (stored as Uint16Array bits).
import * as ort from 'onnxruntime-node';
import { fromHalf, toHalf } from './fp16.ts';
import type { FloatType } from './sd-model.ts';

export function floatTensor(type: FloatType, data: Float32Array, dims: readonly number[]): ort.Tensor {
  return type === 'float16'
    ? new ort.Tensor('float16', toHalf(data), dims)
    : new ort.Tensor('float32', data, dims);
}

/** A float32 view of an output tensor (converted from float16 when need be). */
export function floatsOf(tensor: ort.Tensor): Float32Array {
  return tensor.data instanceof Uint16Array ? fromHalf(tensor.data) : (tensor.data as Float32Array);
}
