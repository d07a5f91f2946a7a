/**
 * The CFG-combined k-diffusion denoiser over the ONNX UNet (A1111 `CFGDenoiser.forward`,
 * k-diffusion `CompVisDenoiser`): c_in = 1/√(σ²+1), eps = UNet(x·c_in, t, cond), den = x − σ·eps,
 * den = den_u + cfg·(den_c − den_u). Cond and uncond share one batch-2 call when their chunk
 * counts match, as A1111 does; otherwise two calls.
 */
import * as ort from 'onnxruntime-node';
import type { Conditioning } from './conditioning.ts';
import { floatsOf, floatTensor } from './model/float-tensor.ts';
import { roundToHalf } from './model/fp16.ts';
import type { SdModel } from './model/sd-model.ts';
import type { Denoiser } from './samplers.ts';
import type { DiscreteSchedule } from './schedule.ts';

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

export function createCfgDenoiser(o: CfgDenoiserOptions): Denoiser {
  const { unet } = o.model;
  const [c, h, w] = o.shape;
  const numel = c * h * w;
  const batched = o.cond.chunks === o.uncond.chunks;
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
  const sampleIn = new Float32Array(numel * (batched ? 2 : 1));
  // two output buffers used in turn: a multistep sampler keeps the previous step's result
  const outputs = [new Float32Array(numel), new Float32Array(numel)];
  let turn = 0;

  const timestep = (sigma: number): ort.Tensor => {
    const dims = unet.timestepRank === 0 ? [] : [1];
    if (unet.timestepType === 'int64') {
      // an integer timestep cannot carry A1111's fractional t: nearest index (k-diffusion quantize)
      return new ort.Tensor('int64', BigInt64Array.from([BigInt(o.schedule.sigmaToNearestT(sigma))]), dims);
    }
    const t = o.schedule.sigmaToT(sigma);
    // A1111 casts t to the UNet dtype, fp16 by default; a float16 input rounds the same way
    const rounded = unet.timestepType === 'float32' && o.timestepRounding === 'exact' ? t : roundToHalf(t);
    return floatTensor(unet.timestepType, Float32Array.from([rounded]), dims);
  };

  const run = async (rows: number, ctx: ort.Tensor, t: ort.Tensor): Promise<Float32Array> => {
    const sample = floatTensor(unet.sampleType, sampleIn.subarray(0, rows * numel), [rows, c, h, w]);
    const result = await unet.session.run({ sample, timestep: t, encoder_hidden_states: ctx });
    return floatsOf(result[unet.output] as ort.Tensor);
  };

  return async (x, sigma) => {
    const cIn = 1 / Math.sqrt(sigma * sigma + 1);
    for (let k = 0; k < numel; k++) sampleIn[k] = (x[k] as number) * cIn;
    const t = timestep(sigma);
    let epsCond: Float32Array;
    let epsUncond: Float32Array;
    if (ctxBoth) {
      sampleIn.copyWithin(numel, 0, numel);
      const eps = await run(2, ctxBoth, t);
      epsCond = eps.subarray(0, numel);
      epsUncond = eps.subarray(numel, 2 * numel);
    } else {
      epsCond = await run(1, ctxCond as ort.Tensor, t);
      epsUncond = await run(1, ctxUncond as ort.Tensor, t);
    }
    const den = outputs[turn] as Float32Array;
    turn ^= 1;
    // den_u + cfg·(den_c − den_u) with den = x − σ·eps  ⇒  x − σ·(eps_u + cfg·(eps_c − eps_u))
    for (let k = 0; k < numel; k++) {
      const eu = epsUncond[k] as number;
      den[k] = (x[k] as number) - sigma * (eu + o.cfg * ((epsCond[k] as number) - eu));
    }
    return den;
  };
}
