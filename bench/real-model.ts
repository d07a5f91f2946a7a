// The full-size model (scripts/make-random-sd15.py → npm run import-checkpoint): session creation,
// then per latent shape one warm-up step and one timed batch-2 CFG step, each the real denoiser
// call the pipeline makes (tensor set-up, run(), CFG combine).
import { createCfgDenoiser } from '../src/diffusion/cfg-denoiser.ts';
import { encodePrompt, tokenizePrompt } from '../src/diffusion/conditioning.ts';
import { type LoadOptions, loadSdModel, type SdModel } from '../src/diffusion/model/sd-model.ts';
import { SD1_SCHEDULE } from '../src/diffusion/schedule.ts';
import { benchRequest } from './job.ts';
import { progress } from './progress.ts';
import { wave } from './unet-inputs.ts';

export interface ShapeTiming {
  /** Latent side: 64 (512 px) or 128 (1024 px). */
  latent: number;
  /** Each step in order, ms: the first ones are the warm-up. */
  stepsMs: number[];
}

export interface RealModelTiming {
  label: string;
  /** The providers the sessions ended up on: one that failed falls back to the CPU. */
  loadedOn: string[];
  loadMs: number;
  textEncodeMs: number;
  shapes: ShapeTiming[];
}

export async function timeRealModel(
  dir: string,
  label: string,
  options: LoadOptions,
  plan: { latent: number; steps: number }[],
): Promise<RealModelTiming> {
  const { model, timing } = await loadAndTime(dir, label, options, plan);
  await model.release();
  return timing;
}

/** timeRealModel, handing the loaded (and now warm) model back for more work on it. */
export async function loadAndTime(
  dir: string,
  label: string,
  options: LoadOptions,
  plan: { latent: number; steps: number }[],
): Promise<{ model: SdModel; timing: RealModelTiming }> {
  progress(`${label}: creating sessions`);
  const t0 = performance.now();
  const model = await loadSdModel(dir, options);
  const loadMs = performance.now() - t0;
  try {
    const req = benchRequest();
    const te0 = performance.now();
    const cond = await encodePrompt(model, tokenizePrompt(model, 'prompt', req.prompt));
    const uncond = await encodePrompt(model, tokenizePrompt(model, 'negative', req.negative));
    const textEncodeMs = performance.now() - te0;
    const shapes: ShapeTiming[] = [];
    for (const { latent, steps } of plan) {
      shapes.push({ latent, stepsMs: await timeSteps(model, cond, uncond, latent, steps, label) });
    }
    return { model, timing: { label, loadedOn: model.executionProviders, loadMs, textEncodeMs, shapes } };
  } catch (err) {
    await model.release();
    throw err;
  }
}

async function timeSteps(
  model: SdModel,
  cond: Awaited<ReturnType<typeof encodePrompt>>,
  uncond: Awaited<ReturnType<typeof encodePrompt>>,
  latent: number,
  steps: number,
  label: string,
): Promise<number[]> {
  const denoise = createCfgDenoiser({
    model,
    schedule: SD1_SCHEDULE,
    cond,
    uncond,
    cfg: 7,
    timestepRounding: 'fp16',
    shape: [4, latent, latent],
  });
  const x = wave(4 * latent * latent, 0.37, 3);
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    progress(`${label}: ${latent}×${latent} latent, step ${i + 1}/${steps}`);
    const t = performance.now();
    await denoise(x, 3 - i * 0.5, i);
    out.push(performance.now() - t);
  }
  return out;
}
