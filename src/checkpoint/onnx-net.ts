/**
 * The layers SD 1.x is made of, as ONNX nodes over the project's GraphBuilder, with their weights
 * pulled from the checkpoint as they are needed (and written straight to the external-data file).
 * Each follows the torch module it stands for (named on the method); the fp16 variant computes in
 * float16 except where the reference does not: group norm runs in float32 as ldm's `GroupNorm32`
 * does, and softmax in float32 so that large attention logits cannot overflow.
 */

import { toHalfBits } from '../diffusion/model/fp16.ts';
import type { ElemType, GraphBuilder } from '../diffusion/model/onnx-graph.ts';
import { toFloat16, toFloat32, transpose2d, type Values } from './tensor-data.ts';
import type { WeightStore } from './weights.ts';

export type Precision = 'fp32' | 'fp16';

function bytesOf(a: Float32Array | Uint16Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export interface ConvOptions {
  stride?: number;
  /** [top, left, bottom, right]; default: k/2 on every side ("same" for odd k). */
  pads?: [number, number, number, number];
}

export class Net {
  /** The element type of activations, inputs and outputs. */
  readonly float: ElemType;

  constructor(
    readonly g: GraphBuilder,
    private readonly weights: WeightStore,
    readonly precision: Precision,
    /** "the UNet", … for error messages. */
    private readonly part: string,
  ) {
    this.float = precision === 'fp16' ? 'float16' : 'float32';
  }

  /** How many dimensions the stored tensor has (for weights stored in two equivalent shapes). */
  storedRank(key: string): number | undefined {
    return this.weights.shape(key)?.length;
  }

  read(key: string, shape: readonly number[]): Values {
    return this.weights.read(key, shape, this.part);
  }

  /** Values as an initializer named `name`, in the compute type unless `fp32`. */
  constant(name: string, values: Values, dims: readonly number[], fp32 = false): string {
    if (fp32 || this.precision === 'fp32') {
      return this.g.constTensor('float32', dims, bytesOf(toFloat32(values)), name);
    }
    return this.g.constTensor('float16', dims, bytesOf(toFloat16(values)), name);
  }

  /**
   * A checkpoint weight of the given shape as an initializer: `as` reshapes it (same element
   * count), `transpose` turns a [out, in] Linear weight into MatMul's [in, out].
   */
  param(
    key: string,
    shape: readonly number[],
    o: { as?: readonly number[]; transpose?: boolean; fp32?: boolean } = {},
  ): string {
    let values = this.read(key, shape);
    let dims = o.as ?? shape;
    if (o.transpose) {
      const [rows = 0, cols = 0] = dims;
      values = transpose2d(values, rows, cols);
      dims = [cols, rows];
    }
    return this.constant(key, values, dims, o.fp32);
  }

  scalar(value: number, fp32 = false): string {
    if (fp32 || this.precision === 'fp32') return this.g.constFloat([value], []);
    return this.g.constTensor('float16', [], bytesOf(Uint16Array.of(toHalfBits(value))));
  }

  ints(values: number[]): string {
    return this.g.constInt64(values);
  }

  op(type: string, inputs: string[], attrs: Parameters<GraphBuilder['op']>[2] = {}): string {
    return this.g.op(type, inputs, attrs);
  }

  toFp32(x: string): string {
    return this.precision === 'fp16' ? this.g.cast(x, 'float32') : x;
  }

  fromFp32(x: string): string {
    return this.precision === 'fp16' ? this.g.cast(x, 'float16') : x;
  }

  /** torch `nn.Linear`: x·Wᵀ + b over the last axis. */
  linear(x: string, prefix: string, inF: number, outF: number, bias = true): string {
    const y = this.op('MatMul', [x, this.param(`${prefix}.weight`, [outF, inF], { transpose: true })]);
    return bias ? this.op('Add', [y, this.param(`${prefix}.bias`, [outF])]) : y;
  }

  /** torch `nn.Conv2d` with bias. */
  conv(x: string, prefix: string, cin: number, cout: number, k: number, o: ConvOptions = {}): string {
    const p = Math.floor(k / 2);
    return this.op(
      'Conv',
      [x, this.param(`${prefix}.weight`, [cout, cin, k, k]), this.param(`${prefix}.bias`, [cout])],
      { kernel_shape: [k, k], strides: [o.stride ?? 1, o.stride ?? 1], pads: o.pads ?? [p, p, p, p] },
    );
  }

  /**
   * torch `nn.GroupNorm(groups, C, eps)` in float32 (ldm `GroupNorm32`): instance norm over each
   * group's channels × pixels, then the per-channel affine.
   */
  groupNorm(x: string, prefix: string, channels: number, eps: number, groups = 32): string {
    const grouped = this.op('Reshape', [this.toFp32(x), this.ints([0, groups, -1])]);
    const ones = this.g.constFloat(new Float32Array(groups).fill(1), [groups]);
    const zeros = this.g.constFloat(new Float32Array(groups), [groups]);
    const normed = this.op('InstanceNormalization', [grouped, ones, zeros], { epsilon: { float: eps } });
    const back = this.op('Reshape', [normed, this.op('Shape', [x])]);
    const gamma = this.param(`${prefix}.weight`, [channels], { as: [channels, 1, 1], fp32: true });
    const beta = this.param(`${prefix}.bias`, [channels], { as: [channels, 1, 1], fp32: true });
    return this.fromFp32(this.op('Add', [this.op('Mul', [back, gamma]), beta]));
  }

  /** torch `nn.LayerNorm(dim, eps)` over the last axis (onnxruntime accumulates in float32). */
  layerNorm(x: string, prefix: string, dim: number, eps = 1e-5): string {
    return this.op(
      'LayerNormalization',
      [x, this.param(`${prefix}.weight`, [dim]), this.param(`${prefix}.bias`, [dim])],
      { axis: -1, epsilon: { float: eps } },
    );
  }

  /** torch `nn.SiLU` (ldm's `nonlinearity`, "swish"): x·σ(x). */
  silu(x: string): string {
    return this.op('Mul', [x, this.op('Sigmoid', [x])]);
  }

  /** torch `F.gelu` (exact, erf form). */
  gelu(x: string): string {
    const erf = this.op('Erf', [this.op('Div', [x, this.scalar(Math.SQRT2)])]);
    return this.op('Mul', [this.op('Mul', [x, this.op('Add', [erf, this.scalar(1)])]), this.scalar(0.5)]);
  }

  /** transformers' `quick_gelu`: x·σ(1.702·x). */
  quickGelu(x: string): string {
    return this.op('Mul', [x, this.op('Sigmoid', [this.op('Mul', [x, this.scalar(1.702)])])]);
  }

  /**
   * Multi-head scaled dot-product attention over [batch, tokens, width] inputs, q pre-scaled by
   * 1/√(head width) (transformers' CLIPAttention order; fp16-safe), softmax in float32 with an
   * optional additive float32 mask broadcast over [batch, heads, n, m].
   */
  attention(q: string, k: string, v: string, width: number, heads: number, mask?: string): string {
    if (!mask) {
      // onnxruntime's contrib MultiHeadAttention, fp32 and fp16 alike (onnxruntime 1.30's CPU
      // provider has both kernels, so an fp16 import still loads on the CPU fallback): scale
      // 1/√(head width), softmax in float32, a tiled (flash) kernel on the CPU and the fused one
      // on CUDA, never holding the n×m scores (17 GB of float32 at 1024×1024)
      return this.g.opIn('com.microsoft', 'MultiHeadAttention', [q, k, v], { num_heads: heads });
    }
    const d = width / heads;
    const split = (x: string, perm: number[]) =>
      this.op('Transpose', [this.op('Reshape', [x, this.ints([0, 0, heads, d])])], { perm });
    const qh = split(this.op('Mul', [q, this.scalar(1 / Math.sqrt(d))]), [0, 2, 1, 3]);
    const kt = split(k, [0, 2, 3, 1]);
    const vh = split(v, [0, 2, 1, 3]);
    let scores = this.toFp32(this.op('MatMul', [qh, kt]));
    if (mask) scores = this.op('Add', [scores, mask]);
    const p = this.fromFp32(this.op('Softmax', [scores], { axis: -1 }));
    const out = this.op('Transpose', [this.op('MatMul', [p, vh])], { perm: [0, 2, 1, 3] });
    return this.op('Reshape', [out, this.ints([0, 0, width])]);
  }
}
