/**
 * A checkpoint tensor's bytes as numbers: float16/bfloat16/float32/float64 → float32 or float16
 * bits, and 2-D transposes for MatMul weights. Conversions are table-driven where they can be:
 * an SD 1.5 checkpoint has a billion values and a per-value `2 ** e` would take a minute.
 */
import { toHalfBits } from '../diffusion/model/fp16.ts';
import { CheckpointError } from './checkpoint-error.ts';
import type { Dtype } from './safetensors.ts';

/** The values as stored: fp16 stays as its bits, everything else becomes float32. */
export type Values = { kind: 'f16'; data: Uint16Array } | { kind: 'f32'; data: Float32Array };

export const FLOAT_DTYPES: readonly Dtype[] = ['F16', 'BF16', 'F32', 'F64'];

let halfTable: Float32Array | undefined;

/** float16 bits → float32 for all 65 536 patterns (exact: every half is a float). */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    table[h] =
      exp === 0
        ? sign * mant * 2 ** -24
        : exp === 0x1f
          ? mant
            ? Number.NaN
            : sign * Number.POSITIVE_INFINITY
          : sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  halfTable = table;
  return table;
}

/** Little-endian bytes → values; `name` is for the error if the dtype is not a float. */
export function decodeValues(name: string, dtype: Dtype, bytes: Uint8Array): Values {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F16': {
      // a fresh read is aligned: view it in place (the importer runs on little-endian hosts only)
      if (bytes.byteOffset % 2 === 0) {
        return { kind: 'f16', data: new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2) };
      }
      const data = new Uint16Array(bytes.byteLength / 2);
      for (let i = 0; i < data.length; i++) data[i] = view.getUint16(2 * i, true);
      return { kind: 'f16', data };
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32
      const data = new Float32Array(bytes.byteLength / 2);
      const bits = new Uint32Array(data.buffer);
      for (let i = 0; i < data.length; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      return { kind: 'f32', data };
    }
    case 'F32': {
      if (bytes.byteOffset % 4 === 0) {
        return { kind: 'f32', data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) };
      }
      const data = new Float32Array(bytes.byteLength / 4);
      for (let i = 0; i < data.length; i++) data[i] = view.getFloat32(4 * i, true);
      return { kind: 'f32', data };
    }
    case 'F64': {
      const data = new Float32Array(bytes.byteLength / 8);
      for (let i = 0; i < data.length; i++) data[i] = view.getFloat64(8 * i, true);
      return { kind: 'f32', data };
    }
    default:
      throw new CheckpointError(
        `tensor "${name}" has dtype ${dtype}, expected one of ${FLOAT_DTYPES.join(', ')}`,
      );
  }
}

export function toFloat32(values: Values): Float32Array {
  if (values.kind === 'f32') return values.data;
  const table = halfToFloatTable();
  const out = new Float32Array(values.data.length);
  for (let i = 0; i < out.length; i++) out[i] = table[values.data[i] as number] as number;
  return out;
}

/** float16 bits, rounded to nearest even from float32 (as torch's `.half()`). */
export function toFloat16(values: Values): Uint16Array {
  if (values.kind === 'f16') return values.data;
  const out = new Uint16Array(values.data.length);
  for (let i = 0; i < out.length; i++) out[i] = toHalfBits(values.data[i] as number);
  return out;
}

/** [rows, cols] → [cols, rows], keeping the representation. */
export function transpose2d(values: Values, rows: number, cols: number): Values {
  const src = values.data;
  const out = values.kind === 'f16' ? new Uint16Array(src.length) : new Float32Array(src.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c] as number;
  }
  return values.kind === 'f16'
    ? { kind: 'f16', data: out as Uint16Array }
    : { kind: 'f32', data: out as Float32Array };
}

/** Elements [start, end) of the values (a view, not a copy). */
export function sliceValues(values: Values, start: number, end: number): Values {
  return values.kind === 'f16'
    ? { kind: 'f16', data: values.data.subarray(start, end) }
    : { kind: 'f32', data: values.data.subarray(start, end) };
}
