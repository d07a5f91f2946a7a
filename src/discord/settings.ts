/**
 * A server's generation settings as the front end uses them: defaults layered under what a
 * member types, and limits that may only narrow the bot's own (`MAX_*` settings), never widen them.
 */
import type { Config } from '../config.ts';
import { DEFAULT_REQUEST, type GenerationRequest, type RequestLimits } from '../diffusion/request.ts';

/** The fields a server may set a default for. */
export type RequestDefaults = Partial<
  Pick<
    GenerationRequest,
    | 'negative'
    | 'steps'
    | 'cfg'
    | 'sampler'
    | 'scheduler'
    | 'width'
    | 'height'
    | 'hiresScale'
    | 'hiresSteps'
    | 'upscaler'
    | 'denoise'
    | 'rng'
    | 'ensd'
  >
>;

/** What a server's admins stored (one row per server); every field optional. */
export interface StoredGuildSettings {
  defaults: RequestDefaults;
  limits: Partial<Omit<RequestLimits, 'promptChars'>>;
  /** Words a prompt may not contain, compared whole-word and case-insensitively. */
  blockedWords: string[];
}

export const EMPTY_GUILD_SETTINGS: StoredGuildSettings = { defaults: {}, limits: {}, blockedWords: [] };

/** The settings in force in a server: bot-wide defaults and limits with the server's on top. */
export interface GuildSettings {
  defaults: Omit<GenerationRequest, 'prompt' | 'seed'>;
  limits: RequestLimits;
  blockedWords: string[];
}

/**
 * The defaults of the guide this product grew from: 512×512, 30 steps, DPM++ 2M Karras, CFG 7,
 * hires ×2 with Latent, denoise 0.6.
 */
export const BUILT_IN_DEFAULTS: Omit<GenerationRequest, 'prompt' | 'seed'> = {
  ...DEFAULT_REQUEST,
  steps: 30,
  sampler: 'DPM++ 2M',
  scheduler: 'Karras',
  cfg: 7,
  width: 512,
  height: 512,
  hiresScale: 2,
  hiresSteps: 0,
  upscaler: 'Latent',
  denoise: 0.6,
};

/** Bot-wide settings (env) under a server's stored ones. */
export function effectiveSettings(
  config: Pick<Config, 'limits' | 'generation'>,
  stored: StoredGuildSettings = EMPTY_GUILD_SETTINGS,
): GuildSettings {
  const narrow = (bot: number, server: number | undefined) =>
    server === undefined ? bot : Math.min(bot, server);
  const limits: RequestLimits = {
    promptChars: config.limits.promptChars,
    steps: narrow(config.limits.steps, stored.limits.steps),
    baseSide: narrow(config.limits.baseSide, stored.limits.baseSide),
    hiresSide: narrow(config.limits.hiresSide, stored.limits.hiresSide),
  };
  const defaults = {
    ...BUILT_IN_DEFAULTS,
    rng: config.generation.rng,
    ensd: config.generation.ensd,
    ...stored.defaults,
  };
  // a default above a tighter limit would refuse every job that does not override it
  defaults.steps = Math.min(defaults.steps, limits.steps);
  defaults.width = Math.min(defaults.width, Math.floor(limits.baseSide / 8) * 8);
  defaults.height = Math.min(defaults.height, Math.floor(limits.baseSide / 8) * 8);
  const fits = limits.hiresSide / Math.max(defaults.width, defaults.height);
  if (defaults.hiresScale > fits) defaults.hiresScale = Math.max(1, Math.floor(fits * 100) / 100);
  return { defaults, limits, blockedWords: stored.blockedWords };
}
