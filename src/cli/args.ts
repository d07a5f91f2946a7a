/**
 * `npm run generate -- …` flags → a validated GenerationRequest. Any problem is one line naming
 * the flag, for exit code 2.
 */
import { parseArgs } from 'node:util';
import { decimal } from '../decimal.ts';
import { sheetCapacity } from '../diffusion/compare-sheet.ts';
import {
  CLI_LIMITS,
  DEFAULT_REQUEST,
  type GenerationRequest,
  hiresSize,
  parseNoiseSource,
  parseSamplerName,
  parseSchedulerName,
  parseUpscalerName,
  RequestError,
  resolveSeed,
  validateRequest,
} from '../diffusion/request.ts';
import { dtypeFlag } from './dtype-flag.ts';
import { readPromptFile } from './prompt-file.ts';
import { UsageError } from './usage-error.ts';

export { UsageError };

export const USAGE =
  'usage: npm run generate -- --model DIR|FILE.safetensors [--vae FILE.safetensors] [--dtype fp32|fp16] (--prompt TEXT | --prompt-file FILE) [--negative TEXT | --negative-file FILE] [--seed N] [--steps N] [--cfg F] [--sampler NAME] [--scheduler NAME] [--width N] [--height N] [--hires-scale F] [--hires-steps N] [--upscaler NAME] [--denoise F[,F…]] [--rng cpu|nv] [--ensd N] --out DIR';

export interface CliJob {
  /** An ONNX folder, or a checkpoint file (or a folder holding one) to import first. */
  modelDir: string;
  /** An external VAE for a checkpoint. */
  vae: string | undefined;
  /** Precision of a checkpoint's import; undefined = by the execution providers. */
  dtype: 'fp32' | 'fp16' | undefined;
  outDir: string;
  request: GenerationRequest;
  /** One upscaled image per value; more than one also writes compare.png. */
  denoises: number[];
  /** The flag each text option came from, to name it in a later error about that text. */
  textFlags: { prompt: string; negative: string };
}

const FLAGS = {
  model: { type: 'string' },
  vae: { type: 'string' },
  dtype: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-file': { type: 'string' },
  negative: { type: 'string' },
  'negative-file': { type: 'string' },
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
  const n = decimal(raw);
  if (n === undefined) throw new UsageError(`--${flag} must be a number (got "${raw}")`);
  return n;
}

/**
 * `--seed -1` as `--seed=-1`: node's parseArgs takes a value that starts with a dash for a flag,
 * and "-1" is the documented random seed (any negative number is at least not a flag).
 */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : '';
    if (name in FLAGS && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** The text of `--NAME TEXT` or `--NAME-file FILE`; at most one of them. */
function text(values: Values, name: 'prompt' | 'negative'): { text: string | undefined; flag: string } {
  const inline = values[name];
  const file = values[`${name}-file`];
  if (inline !== undefined && file !== undefined) {
    throw new UsageError(`--${name} and --${name}-file cannot both be given`);
  }
  if (file === undefined) return { text: inline, flag: name };
  // UTF-8 takes at most 3 bytes per UTF-16 unit, the unit promptChars counts
  return { text: readPromptFile(`${name}-file`, file, 3 * CLI_LIMITS.promptChars), flag: `${name}-file` };
}

/** `--help` or `-h` anywhere a flag may stand (not as the value of one, e.g. `--prompt -h`). */
export function wantsHelp(argv: string[]): boolean {
  return argv.some((arg, i) => {
    const previous = argv[i - 1] ?? '';
    const isValue = previous.startsWith('--') && !previous.includes('=') && previous.slice(2) in FLAGS;
    return (arg === '--help' || arg === '-h') && !isValue;
  });
}

/**
 * node's parse error in one line. A value starting with a dash after a space (`--negative -blurry`)
 * is "ambiguous", and the way out is in the message's last line: say it in ours.
 */
function parseProblem(message: string, argv: string[]): string {
  const ambiguous = /^Option '(--[\w-]+)' argument is ambiguous/.exec(message);
  const flag = ambiguous?.[1];
  if (flag !== undefined) {
    const value = argv[argv.indexOf(flag) + 1] ?? '-…';
    return `${flag} ${JSON.stringify(value)}: a value starting with a dash reads as another option; write ${flag}=${value}`;
  }
  return message.split('\n')[0] ?? 'bad arguments';
}

type Values = { [K in keyof typeof FLAGS]?: string };

/** Defaults that come from the settings (RNG_SOURCE, ENSD) rather than from A1111's own. */
export interface CliDefaults {
  rng: GenerationRequest['rng'];
  ensd: number;
}

export function parseCliArgs(
  argv: string[],
  defaults: CliDefaults = { rng: DEFAULT_REQUEST.rng, ensd: DEFAULT_REQUEST.ensd },
): CliJob {
  let values: Values;
  try {
    ({ values } = parseArgs({
      args: joinNegativeValues(argv),
      options: FLAGS,
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(parseProblem((err as Error).message, argv));
  }
  if (!values.model) {
    throw new UsageError(
      '--model DIR is required (a Stable Diffusion ONNX folder or .safetensors checkpoint)',
    );
  }
  const dtype = dtypeFlag(values.dtype);
  if (values.prompt === undefined && values['prompt-file'] === undefined) {
    throw new UsageError('--prompt TEXT or --prompt-file FILE is required');
  }
  if (!values.out) throw new UsageError('--out DIR is required (where base.png and upscaled.png go)');
  const prompt = text(values, 'prompt');
  const negative = text(values, 'negative');
  const textFlags = { prompt: prompt.flag, negative: negative.flag };

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
      prompt: prompt.text ?? '',
      negative: negative.text ?? '',
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
      rng: values.rng ? parseNoiseSource(values.rng) : defaults.rng,
      ensd: number('ensd', values.ensd, defaults.ensd),
    };
    for (const denoise of denoises) validateRequest({ ...request, denoise }, CLI_LIMITS);
    // several values make a compare sheet beside the images: refused before any work if it cannot
    const { width, height } = hiresSize(request);
    const fits = sheetCapacity(width, height);
    if (denoises.length > 1 && denoises.length > fits)
      throw new UsageError(
        `--denoise: ${denoises.length} values at ${width}×${height} make a compare sheet over 268 megapixels; give at most ${fits}`,
      );
    return {
      modelDir: values.model,
      vae: values.vae,
      dtype,
      outDir: values.out,
      request,
      denoises,
      textFlags,
    };
  } catch (err) {
    if (err instanceof RequestError) throw usageErrorFor(err.option, err.message, textFlags);
    throw err;
  }
}

/** A request problem worded with the flag the user typed (`--prompt-file` for a prompt from a file). */
export function usageErrorFor(option: string, message: string, textFlags: CliJob['textFlags']): UsageError {
  const flag = option === 'prompt' || option === 'negative' ? textFlags[option] : option;
  return new UsageError(`--${flag}${message.slice(option.length)}`);
}
