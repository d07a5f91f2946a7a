// One job, stage by stage, on a loaded model: tokenize + text encode, base pass, latent upscale,
// hires pass, VAE decode ×2, PNG encode ×2, each timed, with the time inside onnxruntime's run()
// beside it so that what is left (ours) can be read per step.
import { encodePrompt, tokenizePrompt } from '../src/diffusion/conditioning.ts';
import { encodePng } from '../src/diffusion/image.ts';
import { upscaleLatent } from '../src/diffusion/latent-upscale.ts';
import type { SdModel } from '../src/diffusion/model/sd-model.ts';
import { type Latent, Pipeline } from '../src/diffusion/pipeline.ts';
import { type GenerationRequest, hiresSize } from '../src/diffusion/request.ts';
import { type RunTimer, timeRuns } from './run-timer.ts';

export interface PassTiming {
  steps: number;
  /** Wall time of the whole pass (setup, noise, every step). */
  wallMs: number;
  /** Mean wall time of a step after the first: run() plus the gap before it. */
  stepMs: number;
  /** Mean time of a step inside the UNet's run(). */
  stepOrtMs: number;
  /** stepMs − stepOrtMs, in µs: ours, per step. */
  overheadUs: number;
  /** The largest step overhead seen, in µs (a preview step, a GC pause). */
  maxOverheadUs: number;
  /** Each step's overhead after the first, µs: medians over these resist a busy machine. */
  perStepUs: number[];
}

export interface StageTimings {
  textEncodeMs: number;
  base: PassTiming;
  upscaleMs: number;
  hires: PassTiming;
  decodeMs: [number, number];
  pngMs: [number, number];
  totalMs: number;
  /** Time inside any onnxruntime run() during the job. */
  ortMs: number;
  /** (total − ortMs) / total. */
  overheadShare: number;
}

export interface Instrumented {
  pipeline: Pipeline;
  unet: RunTimer;
  all: RunTimer;
}

/** A Pipeline over `model` whose sessions' run() are timed (the UNet's apart). */
export function instrument(model: SdModel, previewEvery: number): Instrumented {
  const unet = timeRuns([model.unet.session]);
  const all = timeRuns([model.textEncoder.session, model.unet.session, model.vaeDecoder.session]);
  const pipeline = new Pipeline(model, { modelHash: 'bench', previewEvery });
  return { pipeline, unet, all };
}

/**
 * A pass timed from the UNet's run() calls (one batch-2 call per step): a step's overhead is the
 * gap between one call's end and the next call's start, which is everything of ours between two
 * steps (sampler update, CFG combine, input tensors, progress, previews) and nothing else.
 */
async function timedPass<T>(
  unet: RunTimer,
  run: () => Promise<T>,
): Promise<{ value: T; timing: PassTiming }> {
  const first = unet.spans.length;
  const t0 = performance.now();
  const value = await run();
  const wallMs = performance.now() - t0;
  const spans = unet.spans.slice(first);
  const perStepUs: number[] = [];
  let ort = 0;
  for (let i = 1; i < spans.length; i++) {
    const a = spans[i - 1] as { start: number; end: number };
    const b = spans[i] as { start: number; end: number };
    perStepUs.push((b.start - a.end) * 1000);
    ort += b.end - b.start;
  }
  const n = Math.max(perStepUs.length, 1);
  const stepOrtMs = ort / n;
  const overheadUs = perStepUs.reduce((x, y) => x + y, 0) / n;
  return {
    value,
    timing: {
      steps: spans.length,
      wallMs,
      stepMs: stepOrtMs + overheadUs / 1000,
      stepOrtMs,
      overheadUs,
      maxOverheadUs: Math.max(0, ...perStepUs),
      perStepUs,
    },
  };
}

/** Runs `req` once through every stage; the conditioning is cached by the base pass as in a job. */
export async function runStages(x: Instrumented, req: GenerationRequest): Promise<StageTimings> {
  const { pipeline, unet, all } = x;
  const model = pipeline.model;
  const ort0 = all.ms;
  const start = performance.now();

  const te0 = performance.now();
  await encodePrompt(model, tokenizePrompt(model, 'prompt', req.prompt));
  await encodePrompt(model, tokenizePrompt(model, 'negative', req.negative));
  const textEncodeMs = performance.now() - te0;

  const base = await timedPass(unet, () => pipeline.basePass(req, { onProgress: () => {} }));

  const target = hiresSize(req);
  const up0 = performance.now();
  upscaleLatent(base.value.data, base.value.shape, [target.height / 8, target.width / 8], req.upscaler);
  const upscaleMs = performance.now() - up0;

  const hires = await timedPass(unet, () => pipeline.hiresPass(req, base.value, { onProgress: () => {} }));

  const decodeMs: [number, number] = [0, 0];
  const pngMs: [number, number] = [0, 0];
  for (const [i, latent] of [base.value, hires.value].entries() as Iterable<[number, Latent]>) {
    const d0 = performance.now();
    const { rgb, width, height } = await pipeline.decode(latent);
    const p0 = performance.now();
    await encodePng(rgb, width, height, 'bench');
    decodeMs[i] = p0 - d0;
    pngMs[i] = performance.now() - p0;
  }
  const totalMs = performance.now() - start;
  const ortMs = all.ms - ort0;
  return {
    textEncodeMs,
    base: base.timing,
    upscaleMs,
    hires: hires.timing,
    decodeMs,
    pngMs,
    totalMs,
    ortMs,
    overheadShare: (totalMs - ortMs) / totalMs,
  };
}
