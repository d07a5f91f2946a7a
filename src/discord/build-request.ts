/**
 * Slash-command options → a validated GenerationRequest. Layers, lowest first: the built-in and
 * bot-wide defaults, the server's defaults, a pasted infotext (`parameters`), the options typed.
 * Every bound is checked again here (Discord's min/max can be bypassed by a crafted interaction),
 * with `validateRequest`'s messages under the option names members see.
 */

import type { UnusableValue } from '../diffusion/infotext.ts';
import { promptAsRead } from '../diffusion/prompt/as-read.ts';
import {
  type GenerationRequest,
  parseSamplerName,
  parseUpscalerName,
  RequestError,
  resolveSeed,
  validateRequest,
} from '../diffusion/request.ts';
import { escapeRegExp } from '../escape-regexp.ts';
import { UserError } from '../user-error.ts';
import { readPastedInfotext, sameModelHash } from './paste.ts';
import type { GuildSettings } from './settings.ts';

/** The generation options of /imagine and /compare, as typed (all but the prompt optional). */
export interface GenerationOptions {
  prompt: string;
  negative?: string;
  seed?: number;
  denoise?: number;
  steps?: number;
  cfg?: number;
  sampler?: string;
  /** `WIDTHxHEIGHT` */
  size?: string;
  hiresScale?: number;
  hiresSteps?: number;
  upscaler?: string;
  /** An A1111 infotext, multi-line or squashed onto one line. */
  parameters?: string;
}

export interface ModelInfo {
  name: string;
  hash: string;
  /** A1111's old 8-digit hash, known when the model was imported from its checkpoint file. */
  oldHash?: string | undefined;
  /** An external VAE (infotext `VAE hash`, `VAE`). */
  vae?: { name: string; hash: string } | undefined;
}

/** Something the reply should tell the member about their request, as plain data. */
export type RequestNote =
  | { kind: 'soft-denoise'; denoise: number }
  | { kind: 'other-model'; pastedHash: string; pastedName: string | undefined; loaded: ModelInfo }
  | { kind: 'ignored-parameters'; keys: string[] };

export type Result<T> = { ok: true; value: T } | { ok: false; error: UserError };

/** Below this denoise a latent upscale keeps the upscale's blur (A1111 wiki, Hires. fix). */
export const SOFT_DENOISE_BELOW = 0.5;

/** validateRequest's option names → the slash options members type. */
const OPTION_NAMES: Record<string, string> = {
  'hires-scale': 'hires_scale',
  'hires-steps': 'hires_steps',
  width: 'size',
  height: 'size',
};

/** The typed option that replaces a pasted value of each option (a typed sampler brings its schedule). */
const TYPED_OVER_PASTED: Record<string, keyof GenerationOptions> = {
  steps: 'steps',
  cfg: 'cfg',
  seed: 'seed',
  sampler: 'sampler',
  scheduler: 'sampler',
  denoise: 'denoise',
  'hires-scale': 'hiresScale',
  'hires-steps': 'hiresSteps',
  upscaler: 'upscaler',
};

/** A pasted value the member did not replace by typing: named by its key, with what would do. */
function unusablePasted({ key, error }: UnusableValue): UserError {
  const shown = OPTION_NAMES[error.option] ?? error.option;
  const hint = TYPED_OVER_PASTED[error.option] ? ` Type ${shown} to use another.` : '';
  return new UserError(
    'bad-option',
    `${key} in parameters: ${badOption(error.option, error.message).message}.${hint}`,
    {
      option: 'parameters',
    },
  );
}

export function badOption(option: string, message: string): UserError {
  const shown = OPTION_NAMES[option] ?? option;
  const text = message.startsWith(`${option} `) ? `${shown}${message.slice(option.length)}` : message;
  return new UserError('bad-option', text, { option: shown });
}

export function parseSize(text: string): { width: number; height: number } {
  const m = /^\s*(\d+)\s*[x×]\s*(\d+)\s*$/i.exec(text);
  if (!m) throw new RequestError('size', `must be WIDTHxHEIGHT, e.g. 512x768 (got "${text}")`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

/** /compare's `denoise`: 2 to 4 distinct values, each greater than 0 and at most 1. */
export function parseDenoiseList(text: string): Result<number[]> {
  const parts = text
    .split(/[,\s]+/)
    .map((p) => p.trim())
    .filter(Boolean);
  const values = parts.map(Number);
  const bad = parts.find((part) => {
    const v = Number(part);
    return !Number.isFinite(v) || !(v > 0 && v <= 1);
  });
  if (bad !== undefined) {
    return {
      ok: false,
      error: badOption('denoise', `denoise values must be greater than 0 and at most 1 (got "${bad}")`),
    };
  }
  const distinct = [...new Set(values)];
  if (distinct.length < 2 || distinct.length > 4) {
    return {
      ok: false,
      error: badOption(
        'denoise',
        `denoise must list 2 to 4 different values, e.g. 0.3,0.5,0.7 (got "${text}")`,
      ),
    };
  }
  return { ok: true, value: distinct };
}

/**
 * The first blocked word the prompt contains as the text encoder reads it (after A1111's emphasis
 * parsing and CLIP's clean-up: `ns()fw` and `ＮＳＦＷ` are `nsfw` to the model), compared whole-word
 * and ignoring case. The words are read the same way.
 */
export function findBlockedWord(prompt: string, blocked: readonly string[]): string | undefined {
  const read = promptAsRead(prompt);
  return blocked.find((word) => {
    // read as a prompt too: an entry written with emphasis ("[word]", "(word:1.2)") is its words
    const w = promptAsRead(word);
    if (w === '') return false;
    const escaped = escapeRegExp(w);
    return new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, 'u').test(read);
  });
}

export interface BuildContext {
  settings: GuildSettings;
  model: ModelInfo;
  /** Extra hires passes to check (a /compare's denoise values). */
  denoises?: number[];
}

export function buildRequest(
  options: GenerationOptions,
  ctx: BuildContext,
): Result<{
  request: GenerationRequest;
  notes: RequestNote[];
}> {
  try {
    return { ok: true, value: build(options, ctx) };
  } catch (err) {
    if (err instanceof RequestError) return { ok: false, error: badOption(err.option, err.message) };
    if (err instanceof UserError) return { ok: false, error: err };
    throw err;
  }
}

function build(options: GenerationOptions, ctx: BuildContext) {
  const notes: RequestNote[] = [];
  const req: Omit<GenerationRequest, 'seed'> & { seed?: number } = { ...ctx.settings.defaults, prompt: '' };

  if (options.parameters !== undefined && options.parameters.trim() !== '') {
    const pasted = readPastedInfotext(options.parameters);
    if (!pasted.ok) throw badOption(pasted.option, `${pasted.message} (in parameters)`);
    // options you type win, also over a pasted value we could not use
    const typedOver = (option: string) => {
      const typed = TYPED_OVER_PASTED[option];
      return typed !== undefined && options[typed] !== undefined;
    };
    const refused = pasted.value.unusable.find(({ error }) => !typedOver(error.option));
    if (refused) throw unusablePasted(refused);
    Object.assign(req, pasted.value.request);
    if (pasted.value.ignored.length > 0)
      notes.push({ kind: 'ignored-parameters', keys: pasted.value.ignored });
    const hash = pasted.value.model.hash;
    if (hash && !sameModelHash(hash, ctx.model)) {
      notes.push({
        kind: 'other-model',
        pastedHash: hash,
        pastedName: pasted.value.model.name,
        loaded: ctx.model,
      });
    }
  }

  if (options.prompt.trim() !== '') req.prompt = options.prompt;
  if (options.negative !== undefined) req.negative = options.negative;
  if (options.seed !== undefined) req.seed = options.seed;
  if (options.steps !== undefined) req.steps = options.steps;
  if (options.cfg !== undefined) req.cfg = options.cfg;
  if (options.denoise !== undefined) req.denoise = options.denoise;
  if (options.hiresScale !== undefined) req.hiresScale = options.hiresScale;
  if (options.hiresSteps !== undefined) req.hiresSteps = options.hiresSteps;
  if (options.sampler !== undefined) {
    const parsed = parseSamplerName(options.sampler);
    req.sampler = parsed.sampler;
    // a sampler chosen by name takes its own schedule, not the one of the default it replaces
    req.scheduler = parsed.scheduler ?? 'Automatic';
  }
  if (options.upscaler !== undefined) req.upscaler = parseUpscalerName(options.upscaler);
  if (options.size !== undefined) Object.assign(req, parseSize(options.size));

  if (req.seed !== undefined && req.seed !== -1 && !(Number.isInteger(req.seed) && req.seed >= 0)) {
    throw new RequestError(
      'seed',
      `must be -1 (random) or a whole number from 0 to 4294967295 (got ${req.seed})`,
    );
  }
  const request = validateRequest({ ...req, seed: resolveSeed(req.seed) }, ctx.settings.limits);
  for (const denoise of ctx.denoises ?? []) validateRequest({ ...request, denoise }, ctx.settings.limits);

  // the negative prompt is where members keep unwanted words out, so only the prompt is checked
  const blocked = findBlockedWord(request.prompt, ctx.settings.blockedWords);
  if (blocked !== undefined) {
    throw new UserError(
      'bad-option',
      `Your prompt contains “${blocked}”, which this server does not allow. Remove it and try again.`,
      { option: 'prompt' },
    );
  }

  const softest = Math.min(...(ctx.denoises ?? [request.denoise]));
  if (softest < SOFT_DENOISE_BELOW) notes.push({ kind: 'soft-denoise', denoise: softest });
  return { request, notes };
}
