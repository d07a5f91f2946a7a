/**
 * The CFG-combined k-diffusion denoiser over the ONNX UNet (A1111 `CFGDenoiser.forward`,
 * k-diffusion `CompVisDenoiser`): c_in = 1/√(σ²+1), eps = UNet(x·c_in, t, cond), den = x − σ·eps,
 * den = den_u + cfg·(den_c − den_u). Cond and uncond share one batch-2 call when their chunk
 * counts match, as A1111 does; otherwise two calls.
 */
import * as ort from 'onnxruntime-node';
import type { Conditioning } from './conditioning.ts';
import { floatTensor } from './model/float-tensor.ts';
import { roundToHalf, toHalfBits } from './model/fp16.ts';
import type { SdModel } from './model/sd-model.ts';
import type { Denoiser } from './samplers.ts';
import type { DiscreteSchedule } from './schedule.ts';
import { StepArena, type StepKernels } from './step-arena.ts';

/**
 * How the float timestep reaches a float32 UNet. A1111 casts t to the UNet's dtype, fp16 by
 * default (961.7328 → 961.5); `exact` is A1111 with `--no-half`.
 */
export type TimestepRounding = 'fp16' | 'exact';

export interface CfgDenoiserOptions {
  model: SdModel;
  schedule: DiscreteSchedule;
  cond: Conditioning;
  uncond: Conditioning;
  cfg: number;
  timestepRounding: TimestepRounding;
  /** Latent shape (C,H,W). */
  shape: readonly [number, number, number];
}

/**
 * The UNet's inputs and outputs for one pass, made once: between steps only the values in their
 * buffers change (x·c_in, t), so a step allocates nothing and onnxruntime writes its output
 * into our buffer (a pre-allocated fetch) instead of a new one.
 */
interface UnetIo {
  /** x·c_in for one row, float32 (an fp32 UNet's rows are `sampleTensor`'s own buffer). */
  sample: Float32Array;
  /** An fp16 UNet's input: every row, as float16 bits. */
  sampleHalf: Uint16Array | undefined;
  sampleTensor: ort.Tensor;
  timestepValue: Float32Array | Uint16Array | BigInt64Array;
  timestepTensor: ort.Tensor;
  /** eps of every row, in the UNet's own type. */
  out: Float32Array | Uint16Array;
  outTensor: ort.Tensor;
}

/** The arena bytes `unetIo` takes. */
function unetIoBytes(o: CfgDenoiserOptions, rows: number): number {
  const [c, h, w] = o.shape;
  const n = rows * c * h * w;
  return o.model.unet.sampleType === 'float16'
    ? StepArena.bytesF32(c * h * w) + 2 * StepArena.bytesU16(n)
    : 2 * StepArena.bytesF32(n);
}

function unetIo(o: CfgDenoiserOptions, rows: number, arena: StepArena): UnetIo {
  const { unet } = o.model;
  const [c, h, w] = o.shape;
  const dims = [rows, c, h, w];
  const n = rows * c * h * w;
  const half = unet.sampleType === 'float16';
  const sample = arena.f32(half ? c * h * w : n);
  const sampleHalf = half ? arena.u16(n) : undefined;
  const tDims = unet.timestepRank === 0 ? [] : [1];
  const timestepValue =
    unet.timestepType === 'int64'
      ? new BigInt64Array(1)
      : unet.timestepType === 'float16'
        ? new Uint16Array(1)
        : new Float32Array(1);
  const out = half ? arena.u16(n) : arena.f32(n);
  return {
    sample,
    sampleHalf,
    sampleTensor: sampleHalf
      ? new ort.Tensor('float16', sampleHalf, dims)
      : new ort.Tensor('float32', sample, dims),
    timestepValue,
    timestepTensor: new ort.Tensor(unet.timestepType, timestepValue, tDims),
    out,
    outTensor: new ort.Tensor(unet.sampleType, out, dims),
  };
}

// The per-step loops live at module level, not in the per-pass closure: V8 then optimises them
// once for the process instead of once per pass (a fresh closure starts cold, costing the first
// steps of every pass several times their warm time). The fp32 ones are WebAssembly kernels
// (wasm-kernels.ts) over the pass's arena.

/**
 * The denoiser of one pass, and where its step buffers live: `adopt` puts the pass's latent in
 * the same arena, so that the sampler's update (through `kernels`) runs in WebAssembly too.
 */
export interface CfgDenoiser extends Denoiser {
  kernels: StepKernels;
  /** A copy of `x` in the arena, for the sampler to update in place (one per pass). */
  adopt(x: Float32Array): Float32Array;
}

export function createCfgDenoiser(o: CfgDenoiserOptions): CfgDenoiser {
  const { unet } = o.model;
  const [c, h, w] = o.shape;
  const numel = c * h * w;
  const cfg = o.cfg;
  const batched = o.cond.chunks === o.uncond.chunks;
  const half = unet.sampleType === 'float16';
  const ctxTensor = (data: Float32Array, rows: number, tokens: number) =>
    floatTensor(unet.contextType, data, [rows, tokens, o.cond.hidden]);

  // Conditioning tensors are built once per pass; only x changes between steps.
  const ctxBoth = batched
    ? (() => {
        const both = new Float32Array(o.cond.data.length * 2);
        both.set(o.cond.data, 0);
        both.set(o.uncond.data, o.cond.data.length);
        return ctxTensor(both, 2, o.cond.data.length / o.cond.hidden);
      })()
    : undefined;
  const ctxCond = batched ? undefined : ctxTensor(o.cond.data, 1, o.cond.data.length / o.cond.hidden);
  const ctxUncond = batched ? undefined : ctxTensor(o.uncond.data, 1, o.uncond.data.length / o.uncond.hidden);
  // batched: one call of two rows (cond, uncond); else one call per row, each with its own buffers
  const rows = batched ? 2 : 1;
  // the UNet's input and output, the two denoised buffers and the latent: sized once per pass
  const arena = new StepArena(
    unetIoBytes(o, rows) + (batched ? 0 : unetIoBytes(o, 1)) + 3 * StepArena.bytesF32(numel),
  );
  const kernels = arena.kernels;
  const io = unetIo(o, rows, arena);
  const ioUncond = batched ? undefined : unetIo(o, 1, arena);

  // two output buffers used in turn: a multistep sampler keeps the previous step's result
  const outputs = [arena.f32(numel), arena.f32(numel)];
  let latent: Float32Array | undefined;
  let turn = 0;

  const setTimestep = (target: UnetIo, sigma: number) => {
    const value = target.timestepValue;
    if (value instanceof BigInt64Array) {
      // an integer timestep cannot carry A1111's fractional t: nearest index (k-diffusion quantize)
      value[0] = BigInt(o.schedule.sigmaToNearestT(sigma));
      return;
    }
    const t = o.schedule.sigmaToT(sigma);
    // A1111 casts t to the UNet dtype, fp16 by default; a float16 input rounds the same way
    if (value instanceof Uint16Array) value[0] = toHalfBits(t);
    else value[0] = o.timestepRounding === 'exact' ? t : roundToHalf(t);
  };

  /** x·c_in into every row of `target`'s input. */
  const setSample = (target: UnetIo, x: Float32Array, cIn: number, copies: number) => {
    if (target.sampleHalf) {
      kernels.scaleRows(x, cIn, target.sample, numel, 1);
      kernels.toHalf(target.sample, target.sampleHalf, numel);
      if (copies === 2) target.sampleHalf.copyWithin(numel, 0, numel);
    } else {
      kernels.scaleRows(x, cIn, target.sample, numel, copies);
    }
  };

  const run = async (target: UnetIo, ctx: ort.Tensor, sigma: number): Promise<void> => {
    setTimestep(target, sigma);
    await unet.session.run(
      { sample: target.sampleTensor, timestep: target.timestepTensor, encoder_hidden_states: ctx },
      { [unet.output]: target.outTensor },
    );
  };

  const denoise: Denoiser = async (x, sigma) => {
    const cIn = 1 / Math.sqrt(sigma * sigma + 1);
    // eps rows: cond at [0, numel) of condOut, uncond at [uncondAt, uncondAt + numel) of uncondOut
    let condOut: Float32Array | Uint16Array;
    let uncondOut: Float32Array | Uint16Array;
    let uncondAt: number;
    if (ctxBoth) {
      setSample(io, x, cIn, 2);
      await run(io, ctxBoth, sigma);
      condOut = io.out;
      uncondOut = io.out;
      uncondAt = numel;
    } else {
      const other = ioUncond as UnetIo;
      setSample(io, x, cIn, 1);
      setSample(other, x, cIn, 1);
      await run(io, ctxCond as ort.Tensor, sigma);
      await run(other, ctxUncond as ort.Tensor, sigma);
      condOut = io.out;
      uncondOut = other.out;
      uncondAt = 0;
    }
    const den = outputs[turn] as Float32Array;
    turn ^= 1;
    // den_u + cfg·(den_c − den_u) with den = x − σ·eps  ⇒  x − σ·(eps_u + cfg·(eps_c − eps_u))
    // an fp16 UNet's eps is read as float16 inside the CFG loop, never converted apart
    if (half) {
      kernels.combineHalf(
        den,
        x,
        sigma,
        cfg,
        condOut as Uint16Array,
        uncondOut as Uint16Array,
        uncondAt,
        numel,
      );
    } else {
      kernels.combine(
        den,
        x,
        sigma,
        cfg,
        condOut as Float32Array,
        uncondOut as Float32Array,
        uncondAt,
        numel,
      );
    }
    return den;
  };
  return Object.assign(denoise, {
    kernels,
    adopt(x: Float32Array): Float32Array {
      if (x.length !== numel) throw new RangeError(`adopt: a latent of ${x.length} floats, not ${numel}`);
      latent ??= arena.f32(numel);
      latent.set(x);
      return latent;
    },
  });
}
