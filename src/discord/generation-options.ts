/**
 * The generation options /imagine and /compare share: their Discord definitions (bounds and
 * choices from the bot's limits) and reading them back from an interaction as plain data.
 */
import {
  type APIApplicationCommandBasicOption,
  ApplicationCommandOptionType,
  type ChatInputCommandInteraction,
} from 'discord.js';
import { UPSCALERS } from '../diffusion/latent-upscale.ts';
import { MAX_SEED, type RequestLimits } from '../diffusion/request.ts';
import { LEGACY_SAMPLER_NAMES, SAMPLERS } from '../diffusion/samplers.ts';
import type { GenerationOptions } from './build-request.ts';

/** Discord's longest string option. */
const DISCORD_MAX_LENGTH = 6000;

const SIZE_CANDIDATES: { width: number; height: number; label: string }[] = [
  { width: 512, height: 512, label: 'square' },
  { width: 512, height: 768, label: 'portrait 2:3' },
  { width: 768, height: 512, label: 'landscape 3:2' },
  { width: 576, height: 768, label: 'portrait 3:4' },
  { width: 768, height: 576, label: 'landscape 4:3' },
  { width: 432, height: 768, label: 'tall 9:16' },
  { width: 768, height: 432, label: 'wide 16:9' },
  { width: 640, height: 640, label: 'square' },
  { width: 768, height: 768, label: 'square' },
  { width: 384, height: 384, label: 'square, small' },
  { width: 256, height: 256, label: 'square, tiny' },
];

/** Square and common aspect ratios whose sides fit the configured base limit. */
export function sizeChoices(baseSide: number): { name: string; value: string }[] {
  const fitting = SIZE_CANDIDATES.filter((s) => Math.max(s.width, s.height) <= baseSide);
  const list =
    fitting.length > 0
      ? fitting
      : [{ width: Math.floor(baseSide / 8) * 8, height: Math.floor(baseSide / 8) * 8, label: 'square' }];
  return list.map((s) => ({ name: `${s.width}×${s.height} (${s.label})`, value: `${s.width}x${s.height}` }));
}

export const SAMPLER_CHOICES = [...SAMPLERS, ...Object.keys(LEGACY_SAMPLER_NAMES)].map((name) => ({
  name,
  value: name,
}));

export const UPSCALER_CHOICES = UPSCALERS.map((name) => ({ name, value: name }));

const S = ApplicationCommandOptionType.String;
const I = ApplicationCommandOptionType.Integer;
const N = ApplicationCommandOptionType.Number;

export function promptOption(limits: RequestLimits): APIApplicationCommandBasicOption {
  return {
    type: S,
    name: 'prompt',
    description: 'What to draw (A1111 syntax: (word:1.2), [word], BREAK)',
    required: true,
    max_length: Math.min(limits.promptChars, DISCORD_MAX_LENGTH),
  };
}

/** The optional settings after the prompt (and, for /compare, its denoise list). */
export function settingOptions(
  limits: RequestLimits,
  o: { denoise: boolean },
): APIApplicationCommandBasicOption[] {
  const maxLength = Math.min(limits.promptChars, DISCORD_MAX_LENGTH);
  const options: APIApplicationCommandBasicOption[] = [
    { type: S, name: 'negative', description: 'What to keep out of the picture', max_length: maxLength },
    {
      type: I,
      name: 'seed',
      description: 'Same seed + same settings = same picture; -1 = random',
      min_value: -1,
      max_value: MAX_SEED,
    },
  ];
  if (o.denoise) {
    options.push({
      type: N,
      name: 'denoise',
      description: 'How much the hires pass may change (default 0.6)',
      min_value: 0.01,
      max_value: 1,
    });
  }
  options.push(
    { type: I, name: 'steps', description: 'Sampling steps per pass', min_value: 1, max_value: limits.steps },
    {
      type: N,
      name: 'cfg',
      description: 'How closely to follow the prompt (CFG scale)',
      min_value: 1,
      max_value: 30,
    },
    { type: S, name: 'sampler', description: 'Sampler (and schedule)', choices: SAMPLER_CHOICES },
    {
      type: S,
      name: 'size',
      description: 'Base size, before the hires upscale',
      choices: sizeChoices(limits.baseSide),
    },
    {
      type: N,
      name: 'hires_scale',
      description: 'Upscale factor of the hires pass',
      min_value: 1,
      max_value: 4,
    },
    {
      type: I,
      name: 'hires_steps',
      description: 'Steps of the hires pass (0 = same as steps)',
      min_value: 0,
      max_value: limits.steps,
    },
    { type: S, name: 'upscaler', description: 'Latent upscale mode', choices: UPSCALER_CHOICES },
    {
      type: S,
      name: 'parameters',
      description: 'An A1111 infotext (PNG Info) to take every setting from; options you set win',
      max_length: DISCORD_MAX_LENGTH,
    },
  );
  return options;
}

/** The typed options, as plain data (undefined = not given); /compare reads its denoise list itself. */
export function readGenerationOptions(
  i: ChatInputCommandInteraction,
  o2: { denoise: boolean },
): GenerationOptions {
  const o = i.options;
  const opt = <T>(v: T | null): T | undefined => (v === null ? undefined : v);
  return {
    prompt: o.getString('prompt') ?? '',
    negative: opt(o.getString('negative')),
    seed: opt(o.getInteger('seed')),
    denoise: o2.denoise ? opt(o.getNumber('denoise')) : undefined,
    steps: opt(o.getInteger('steps')),
    cfg: opt(o.getNumber('cfg')),
    sampler: opt(o.getString('sampler')),
    size: opt(o.getString('size')),
    hiresScale: opt(o.getNumber('hires_scale')),
    hiresSteps: opt(o.getInteger('hires_steps')),
    upscaler: opt(o.getString('upscaler')),
    parameters: opt(o.getString('parameters')),
  };
}
