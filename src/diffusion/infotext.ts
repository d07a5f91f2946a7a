/**
 * A1111 v1.10 infotext ("parameters"): `processing.py::create_infotext` key order and
 * `infotext_utils.py::quote`, and the reverse, `parse_generation_parameters`, so a user can paste
 * what A1111's PNG Info shows and get the same job.
 */

import { decimal } from '../decimal.ts';
import { ParamScan } from './infotext-params.ts';
import {
  type GenerationRequest,
  parseNoiseSource,
  parseSamplerName,
  parseSchedulerName,
  parseUpscalerName,
  RequestError,
} from './request.ts';
import { resolveScheduler, SAMPLER_INFO } from './samplers.ts';

export const HIRESBOT_VERSION = 'hiresbot-0.1.0';

export interface InfotextModel {
  name: string;
  hash: string;
  /** An external VAE (A1111's "SD VAE"): written as `VAE hash` and `VAE` after the model. */
  vae?: { name: string; hash: string } | undefined;
}

/** `quote`: JSON-encode a value that contains a comma, a colon or a newline. */
export function quote(value: string): string {
  return /[,:\n]/.test(value) ? JSON.stringify(value) : value;
}

/** Python `str()` of a number as the A1111 UI sends it: ints print bare, floats shortest. */
function num(v: number): string {
  return String(v);
}

/**
 * The infotext of the base image (`hires: false`: what A1111 writes for the same txt2img without
 * Hires. fix) or of the upscaled image (with the denoise and Hires keys).
 */
export function formatInfotext(req: GenerationRequest, model: InfotextModel, hires: boolean): string {
  const params: [string, string | undefined][] = [
    ['Steps', num(req.steps)],
    ['Sampler', req.sampler],
    ['Schedule type', resolveScheduler(req)],
    ['CFG scale', num(req.cfg)],
    ['Seed', num(req.seed)],
    ['Size', `${req.width}x${req.height}`],
    ['Model hash', model.hash],
    ['Model', model.name],
    ['VAE hash', model.vae?.hash],
    ['VAE', model.vae?.name],
    ['Variation seed', req.subseedStrength !== 0 ? num(req.subseed) : undefined],
    ['Variation seed strength', req.subseedStrength !== 0 ? num(req.subseedStrength) : undefined],
    ['Denoising strength', hires ? num(req.denoise) : undefined],
    ['ENSD', req.ensd !== 0 && SAMPLER_INFO[req.sampler].usesEnsd ? num(req.ensd) : undefined],
    // our "nv" is what A1111's default "GPU" source gives on NVIDIA cards; written as A1111 writes
    // its "NV" source, so the image reproduces on any A1111 install, not only on NVIDIA cards
    ['RNG', req.rng === 'cpu' ? 'CPU' : 'NV'],
    ['Hires upscale', hires ? num(req.hiresScale) : undefined],
    ['Hires steps', hires && req.hiresSteps !== 0 ? num(req.hiresSteps) : undefined],
    ['Hires upscaler', hires ? req.upscaler : undefined],
    ['Version', HIRESBOT_VERSION],
  ];
  const line = params
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([k, v]) => (k === v ? k : `${k}: ${quote(v)}`))
    .join(', ');
  const negative = req.negative ? `\nNegative prompt: ${req.negative}` : '';
  return `${req.prompt}${negative}\n${line}`.trim();
}

const RE_SIZE = /^(\d+)x(\d+)$/;

/** `parse_generation_parameters`: prompt, negative prompt and the key/value line. */
export function parseInfotextFields(text: string): {
  prompt: string;
  negative: string;
  params: Map<string, string>;
} {
  const lines = text.trim().split('\n');
  const last = lines.pop() ?? '';
  let matches = new ParamScan(last).matchesFrom(0);
  if (matches.length < 3) {
    lines.push(last);
    matches = [];
  }
  let prompt = '';
  let negative = '';
  let inNegative = false;
  for (const raw of lines) {
    let line = raw.trim();
    if (line.startsWith('Negative prompt:')) {
      inNegative = true;
      line = line.slice(16).trim();
    }
    if (inNegative) negative += (negative === '' ? '' : '\n') + line;
    else prompt += (prompt === '' ? '' : '\n') + line;
  }
  const params = new Map<string, string>();
  for (const m of matches) {
    const key = m.key.trim();
    let value = m.value.trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        // keep as typed
      }
    }
    params.set(key, value);
  }
  return { prompt, negative, params };
}

function numberParam(params: Map<string, string>, key: string, option: string): number | undefined {
  const v = params.get(key);
  if (v === undefined) return undefined;
  // decimal, as A1111's int() and float() read it: never 0x10 for 16
  const n = decimal(v);
  if (n === undefined) throw new RequestError(option, `must be a number (got "${v}")`);
  return n;
}

/** A pasted value we cannot use: its key, and the error that names the option it would set. */
export interface UnusableValue {
  key: string;
  error: RequestError;
}

/**
 * Reads an A1111 infotext back into request fields. Keys we do not reproduce (face restoration,
 * …) are reported in `ignored` rather than silently dropped; values we cannot use (a non-latent
 * upscaler, a sampler we lack, a number that is not one) in `unusable`, not thrown, so that an
 * option the member typed can replace them (the caller decides).
 */
export function parseInfotext(text: string): {
  request: Partial<GenerationRequest>;
  ignored: string[];
  unusable: UnusableValue[];
} {
  const { prompt, negative, params } = parseInfotextFields(text);
  const req: Partial<GenerationRequest> = { prompt, negative };
  const unusable: UnusableValue[] = [];
  const set = <K extends keyof GenerationRequest>(k: K, v: GenerationRequest[K] | undefined) => {
    if (v !== undefined) req[k] = v;
  };
  const read = <T>(key: string, parse: () => T): T | undefined => {
    try {
      return parse();
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      unusable.push({ key, error: err });
      return undefined;
    }
  };
  const readNumber = (key: string, option: string) => read(key, () => numberParam(params, key, option));
  const readName = <T>(key: string, parse: (name: string) => T): T | undefined => {
    const name = params.get(key);
    return name ? read(key, () => parse(name)) : undefined;
  };

  set('steps', readNumber('Steps', 'steps'));
  set('cfg', readNumber('CFG scale', 'cfg'));
  set('seed', readNumber('Seed', 'seed'));
  const sampler = readName('Sampler', parseSamplerName);
  if (sampler) {
    req.sampler = sampler.sampler;
    if (sampler.scheduler) req.scheduler = sampler.scheduler;
  }
  if (params.get('Schedule type')) set('scheduler', readName('Schedule type', parseSchedulerName));
  else if (req.sampler && !req.scheduler) req.scheduler = 'Automatic';
  const size = RE_SIZE.exec(params.get('Size') ?? '');
  if (size) {
    req.width = Number(size[1]);
    req.height = Number(size[2]);
  }
  const strength = readNumber('Variation seed strength', 'subseed-strength');
  if (strength !== undefined) {
    req.subseedStrength = strength;
    set('subseed', readNumber('Variation seed', 'subseed'));
  }
  set('denoise', readNumber('Denoising strength', 'denoise'));
  set('ensd', readNumber('ENSD', 'ensd'));
  // no RNG key: A1111's default "GPU" source, our nv
  set('rng', params.get('RNG') ? readName('RNG', parseNoiseSource) : 'nv');
  set('hiresScale', readNumber('Hires upscale', 'hires-scale'));
  if (params.has('Hires upscale'))
    set(
      'hiresSteps',
      read('Hires steps', () => numberParam(params, 'Hires steps', 'hires-steps') ?? 0),
    );
  set('upscaler', readName('Hires upscaler', parseUpscalerName));

  const understood = new Set([
    'Steps',
    'Sampler',
    'Schedule type',
    'CFG scale',
    'Seed',
    'Size',
    'Model hash',
    'Model',
    'VAE hash',
    'VAE',
    'Variation seed',
    'Variation seed strength',
    'Denoising strength',
    'ENSD',
    'RNG',
    'Hires upscale',
    'Hires steps',
    'Hires upscaler',
    'Version',
  ]);
  const ignored = [...params.keys()].filter((k) => !understood.has(k));
  return { request: req, ignored, unusable };
}
