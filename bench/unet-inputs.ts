// Fixed inputs for the bench's UNet runs: sine waves, the same every run and on every machine (and
// in bench/torch_cuda.py, which builds the same ones), so outputs compare across providers.
import * as ort from 'onnxruntime-node';
import { floatsOf, floatTensor } from '../src/diffusion/model/float-tensor.ts';
import type { FloatType, UnetPart } from '../src/diffusion/model/sd-model.ts';

/** sin(k·f)·amp for k = 0 … n−1. */
export const wave = (n: number, f: number, amp: number): Float32Array =>
  Float32Array.from({ length: n }, (_, k) => Math.sin(k * f) * amp);

/** The UNet's inputs for a batch-2 step at a latent side, as a CFG step's batch. */
export function unetFeeds(unet: UnetPart, latent: number): Record<string, ort.Tensor> {
  // the text encoder's width: 768 for SD 1.x, less for a small test checkpoint
  const ctx = unet.session.inputMetadata.find((m) => m.name === 'encoder_hidden_states');
  const width = ctx?.isTensor && typeof ctx.shape[2] === 'number' ? ctx.shape[2] : 768;
  const t = unet.timestepType === 'int64' ? new BigInt64Array([500n]) : Float32Array.of(500);
  return {
    sample: floatTensor(unet.sampleType, wave(2 * 4 * latent * latent, 0.37, 1), [2, 4, latent, latent]),
    timestep:
      t instanceof BigInt64Array
        ? new ort.Tensor('int64', t, unet.timestepRank === 0 ? [] : [1])
        : floatTensor(unet.timestepType as FloatType, t, unet.timestepRank === 0 ? [] : [1]),
    encoder_hidden_states: floatTensor(unet.contextType, wave(2 * 77 * width, 0.011, 1), [2, 77, width]),
  };
}

/** The UNet's output for `unetFeeds` at a latent side, as float32. */
export async function runUnet(unet: UnetPart, latent: number): Promise<Float32Array> {
  const out = await unet.session.run(unetFeeds(unet, latent));
  return Float32Array.from(floatsOf(out[unet.output] as ort.Tensor));
}
