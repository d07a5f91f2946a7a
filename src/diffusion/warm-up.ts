/**
 * A model's first runs at a new shape are slow (onnxruntime plans its memory, a GPU provider
 * searches its kernels: cuDNN's algorithm search); the first two UNet steps at a shape take about
 * twice as long as the rest. Warming up runs those calls at the shapes jobs will use (the base
 * and the hires latent) before any user's job does.
 */
import { createCfgDenoiser } from './cfg-denoiser.ts';
import { encodePrompt, tokenizePrompt } from './conditioning.ts';
import type { SdModel } from './model/sd-model.ts';
import type { Pipeline } from './pipeline.ts';
import { SD1_SCHEDULE } from './schedule.ts';

export interface WarmUpShape {
  /** Latent height and width (image size / 8). */
  height: number;
  width: number;
}

/** Two batch-2 UNet steps and one VAE decode per shape; `stop` is checked between calls. */
export async function warmUp(
  pipeline: Pipeline,
  shapes: readonly WarmUpShape[],
  stop: () => boolean = () => false,
): Promise<{ ms: number; stopped: boolean }> {
  const start = performance.now();
  const model: SdModel = pipeline.model;
  const empty = await encodePrompt(model, tokenizePrompt(model, 'prompt', ''));
  for (const { height, width } of shapes) {
    const denoise = createCfgDenoiser({
      model,
      schedule: SD1_SCHEDULE,
      cond: empty,
      uncond: empty,
      cfg: 7,
      timestepRounding: 'fp16',
      shape: [4, height, width],
    });
    const x = new Float32Array(4 * height * width);
    for (let i = 0; i < 2; i++) {
      if (stop()) return { ms: performance.now() - start, stopped: true };
      await denoise(x, 1, i);
    }
    if (stop()) return { ms: performance.now() - start, stopped: true };
    await pipeline.decode({ data: x, shape: [4, height, width] });
  }
  return { ms: performance.now() - start, stopped: false };
}
