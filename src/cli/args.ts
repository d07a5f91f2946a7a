/**
 * `npm run generate -- …` flags → a validated GenerationRequest. Any problem is one line naming
 * the flag, for exit code 2.
 */
import { parseArgs } from 'node:util';
import {
  CLI_LIMITS,
  DEFAULT_REQUEST,
  type GenerationRequest,
  parseNoiseSource,
  parseSamplerName,
  parseSchedulerName,
  parseUpscalerName,
  RequestError,
  resolveSeed,
  validateRequest,
} from '../diffusion/request.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE =
  'usage: npm run generate -- --model DIR --prompt TEXT [--negative TEXT] [--seed N] [--steps N] [--cfg F] [--sampler NAME] [--scheduler NAME] [--width N] [--height N] [--hires-scale F] [--hires-steps N] [--upscaler NAME] [--denoise F[,F…]] [--rng cpu|nv] [--ensd N] --out DIR';

export interface CliJob {
  modelDir: string;
  outDir: string;
  request: GenerationRequest;
  /** One upscaled image per value; more than one also writes compare.png. */
  denoises: number[];
}

const FLAGS = {
  model: { type: 'string' },
  prompt: { type: 'string' },
  negative: { type: 'string' },
  seed: { type: 'string' },
  steps: { type: 'string' },
  cfg: { type: 'string' },
  sampler: { type: 'string' },
  scheduler: { type: 'string' },
  width: { type: 'string' },
  height: { type: 'string' },
  'hires-scale': { type: 'string' },
  'hires-steps': { type: 'string' },
  upscaler: { type: 'string' },
  denoise: { type: 'string' },
  rng: { type: 'string' },
  ensd: { type: 'string' },
  out: { type: 'string' },
} as const;

function number(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n))
    throw new UsageError(`--${flag} must be a number (got "${raw}")`);
  return n;
}

export function parseCliArgs(argv: string[]): CliJob {
  let values: { [K in keyof typeof FLAGS]?: string };
  try {
    ({ values } = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0] ?? 'bad arguments');
  }
  if (!values.model) throw new UsageError('--model DIR is required (a Stable Diffusion ONNX folder)');
  if (values.prompt === undefined) throw new UsageError('--prompt TEXT is required');
  if (!values.out) throw new UsageError('--out DIR is required (where base.png and upscaled.png go)');

  try {
    const sampler = values.sampler ? parseSamplerName(values.sampler) : { sampler: DEFAULT_REQUEST.sampler };
    const denoises = (values.denoise ?? String(DEFAULT_REQUEST.denoise))
      .split(',')
      .map((d) => number('denoise', d, 0));
    const seed = number('seed', values.seed, -1);
    if (!Number.isInteger(seed) || seed < -1)
      throw new UsageError(
        `--seed must be -1 (random) or a whole number from 0 to 4294967295 (got "${values.seed}")`,
      );
    const request: GenerationRequest = {
      ...DEFAULT_REQUEST,
      prompt: values.prompt,
      negative: values.negative ?? '',
      seed: resolveSeed(seed),
      steps: number('steps', values.steps, DEFAULT_REQUEST.steps),
      cfg: number('cfg', values.cfg, DEFAULT_REQUEST.cfg),
      sampler: sampler.sampler,
      scheduler: values.scheduler ? parseSchedulerName(values.scheduler) : (sampler.scheduler ?? 'Automatic'),
      width: number('width', values.width, DEFAULT_REQUEST.width),
      height: number('height', values.height, DEFAULT_REQUEST.height),
      hiresScale: number('hires-scale', values['hires-scale'], DEFAULT_REQUEST.hiresScale),
      hiresSteps: number('hires-steps', values['hires-steps'], DEFAULT_REQUEST.hiresSteps),
      upscaler: values.upscaler ? parseUpscalerName(values.upscaler) : DEFAULT_REQUEST.upscaler,
      denoise: denoises[0] as number,
      rng: values.rng ? parseNoiseSource(values.rng) : DEFAULT_REQUEST.rng,
      ensd: number('ensd', values.ensd, DEFAULT_REQUEST.ensd),
    };
    for (const denoise of denoises) validateRequest({ ...request, denoise }, CLI_LIMITS);
    return { modelDir: values.model, outDir: values.out, request, denoises };
  } catch (err) {
    if (err instanceof RequestError) throw new UsageError(`--${err.message}`);
    throw err;
  }
}
