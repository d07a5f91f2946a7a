// /settings: the server's generation defaults, limits and blocked words (Manage Server).
import {
  type APIApplicationCommandBasicOption,
  ApplicationCommandOptionType,
  ApplicationCommandType,
  ApplicationIntegrationType,
  type ChatInputCommandInteraction,
  InteractionContextType,
  PermissionFlagsBits,
} from 'discord.js';
import {
  MAX_SEED,
  parseNoiseSource,
  parseSamplerName,
  parseUpscalerName,
  RequestError,
  validateRequest,
} from '../src/diffusion/request.ts';
import { badOption, parseSize } from '../src/discord/build-request.ts';
import type { Command, CommandContext } from '../src/discord/command.ts';
import { SAMPLER_CHOICES, sizeChoices, UPSCALER_CHOICES } from '../src/discord/generation-options.ts';
import { renderSettings } from '../src/discord/render/info.ts';
import { toSendOptions } from '../src/discord/reply.ts';
import { requesterOf } from '../src/discord/requester.ts';
import type { GuildSettingsChange } from '../src/discord/services.ts';
import type { RequestDefaults } from '../src/discord/settings.ts';

const { Subcommand, String: S, Integer: I, Number: N } = ApplicationCommandOptionType;

function wordsOf(text: string): string[] {
  return text
    .split(',')
    .map((w) => w.trim().toLowerCase())
    .filter(Boolean);
}

/** The defaults an admin typed (only those). */
function defaultsChange(i: ChatInputCommandInteraction): RequestDefaults {
  const o = i.options;
  const change: RequestDefaults = {};
  const steps = o.getInteger('steps');
  if (steps !== null) change.steps = steps;
  const cfg = o.getNumber('cfg');
  if (cfg !== null) change.cfg = cfg;
  const sampler = o.getString('sampler');
  if (sampler !== null) {
    const parsed = parseSamplerName(sampler);
    change.sampler = parsed.sampler;
    change.scheduler = parsed.scheduler ?? 'Automatic';
  }
  const size = o.getString('size');
  if (size !== null) Object.assign(change, parseSize(size));
  const hiresScale = o.getNumber('hires_scale');
  if (hiresScale !== null) change.hiresScale = hiresScale;
  const hiresSteps = o.getInteger('hires_steps');
  if (hiresSteps !== null) change.hiresSteps = hiresSteps;
  const upscaler = o.getString('upscaler');
  if (upscaler !== null) change.upscaler = parseUpscalerName(upscaler);
  const denoise = o.getNumber('denoise');
  if (denoise !== null) change.denoise = denoise;
  const negative = o.getString('negative');
  if (negative !== null) change.negative = negative;
  const ensd = o.getInteger('ensd');
  if (ensd !== null) change.ensd = ensd;
  const noise = o.getString('noise');
  if (noise !== null) change.rng = parseNoiseSource(noise);
  return change;
}

async function show(i: ChatInputCommandInteraction, ctx: CommandContext, guildId: string, prefix = '') {
  const [settings, budget] = await Promise.all([
    ctx.services.guildSettings(guildId),
    ctx.services.quota.guildDailyUnits(guildId),
  ]);
  const p = renderSettings(settings, budget, ctx.services.workers?.live());
  await i.reply(toSendOptions({ ...p, content: `${prefix}${p.content}` }));
}

export default {
  admin: true,
  data: (limits) => {
    const defaults: APIApplicationCommandBasicOption[] = [
      { type: I, name: 'steps', description: 'Default steps', min_value: 1, max_value: limits.steps },
      { type: N, name: 'cfg', description: 'Default CFG scale', min_value: 1, max_value: 30 },
      { type: S, name: 'sampler', description: 'Default sampler', choices: SAMPLER_CHOICES },
      { type: S, name: 'size', description: 'Default base size', choices: sizeChoices(limits.baseSide) },
      {
        type: N,
        name: 'hires_scale',
        description: 'Default hires upscale factor',
        min_value: 1,
        max_value: 4,
      },
      {
        type: I,
        name: 'hires_steps',
        description: 'Default hires steps (0 = same as steps)',
        min_value: 0,
        max_value: limits.steps,
      },
      { type: S, name: 'upscaler', description: 'Default latent upscale mode', choices: UPSCALER_CHOICES },
      { type: N, name: 'denoise', description: 'Default denoise', min_value: 0.01, max_value: 1 },
      {
        type: S,
        name: 'negative',
        description: 'Default negative prompt',
        max_length: Math.min(limits.promptChars, 6000),
      },
      {
        type: I,
        name: 'ensd',
        description: 'Eta noise seed delta (A1111 ENSD; 0 = off)',
        min_value: 0,
        max_value: MAX_SEED,
      },
      {
        type: S,
        name: 'noise',
        description: 'Noise source',
        choices: [
          { name: 'NV (A1111 "GPU" on NVIDIA)', value: 'nv' },
          { name: 'CPU (A1111 "CPU")', value: 'cpu' },
        ],
      },
    ];
    return {
      type: ApplicationCommandType.ChatInput,
      name: 'settings',
      description: 'This server’s image defaults, limits and blocked words',
      contexts: [InteractionContextType.Guild],
      integration_types: [ApplicationIntegrationType.GuildInstall],
      default_member_permissions: String(PermissionFlagsBits.ManageGuild),
      options: [
        { type: Subcommand, name: 'show', description: 'Show the settings in force here' },
        {
          type: Subcommand,
          name: 'defaults',
          description: 'Change the defaults members get',
          options: defaults,
        },
        {
          type: Subcommand,
          name: 'limits',
          description: 'Tighten the bot’s limits for this server',
          options: [
            {
              type: I,
              name: 'max_steps',
              description: 'Most steps per pass',
              min_value: 1,
              max_value: limits.steps,
            },
            {
              type: I,
              name: 'max_base_side',
              description: 'Largest base side',
              min_value: 64,
              max_value: limits.baseSide,
            },
            {
              type: I,
              name: 'max_hires_side',
              description: 'Largest upscaled side',
              min_value: 64,
              max_value: limits.hiresSide,
            },
          ],
        },
        {
          type: Subcommand,
          name: 'block-word',
          description: 'Refuse prompts containing these words (comma-separated)',
          options: [
            {
              type: S,
              name: 'words',
              description: 'Words, comma-separated',
              required: true,
              max_length: 500,
            },
          ],
        },
        {
          type: Subcommand,
          name: 'unblock-word',
          description: 'Allow these words again (comma-separated)',
          options: [
            {
              type: S,
              name: 'words',
              description: 'Words, comma-separated',
              required: true,
              max_length: 500,
            },
          ],
        },
        {
          type: Subcommand,
          name: 'reset',
          description: 'Go back to the bot’s own values',
          options: [
            {
              type: S,
              name: 'what',
              description: 'What to reset',
              required: true,
              choices: [
                { name: 'defaults', value: 'defaults' },
                { name: 'limits', value: 'limits' },
                { name: 'blocked words', value: 'blocked-words' },
              ],
            },
          ],
        },
      ],
    };
  },

  async execute(interaction, ctx) {
    const { guildId, userId } = requesterOf(interaction);
    const sub = interaction.options.getSubcommand();
    if (sub === 'show') return show(interaction, ctx, guildId);
    let change: GuildSettingsChange;
    try {
      change = await changeFor(interaction, ctx, guildId, sub);
    } catch (err) {
      if (err instanceof RequestError) throw badOption(err.option, err.message);
      throw err;
    }
    await ctx.services.updateGuildSettings(guildId, change, userId);
    await show(interaction, ctx, guildId, '✅ Saved.\n');
  },
} satisfies Command;

async function changeFor(
  i: ChatInputCommandInteraction,
  ctx: CommandContext,
  guildId: string,
  sub: string,
): Promise<GuildSettingsChange> {
  switch (sub) {
    case 'defaults': {
      const defaults = defaultsChange(i);
      const current = await ctx.services.guildSettings(guildId);
      // the defaults must make a job the server's own limits accept
      validateRequest({ ...current.defaults, ...defaults, prompt: 'x', seed: 0 }, current.limits);
      return { defaults };
    }
    case 'limits': {
      const limits: NonNullable<GuildSettingsChange['limits']> = {};
      const steps = i.options.getInteger('max_steps');
      if (steps !== null) limits.steps = Math.min(steps, ctx.limits.steps);
      const base = i.options.getInteger('max_base_side');
      if (base !== null) limits.baseSide = Math.min(base, ctx.limits.baseSide);
      const hires = i.options.getInteger('max_hires_side');
      if (hires !== null) limits.hiresSide = Math.min(hires, ctx.limits.hiresSide);
      return { limits };
    }
    case 'block-word':
      return { addBlockedWords: wordsOf(i.options.getString('words', true)) };
    case 'unblock-word':
      return { removeBlockedWords: wordsOf(i.options.getString('words', true)) };
    case 'reset': {
      const what = i.options.getString('what', true);
      if (what === 'defaults') return { defaults: Object.fromEntries(DEFAULT_KEYS.map((k) => [k, null])) };
      if (what === 'limits') return { limits: { steps: null, baseSide: null, hiresSide: null } };
      const current = await ctx.services.storedGuildSettings(guildId);
      return { removeBlockedWords: current.blockedWords };
    }
    default:
      throw new RequestError(
        'subcommand',
        `is not one of show, defaults, limits, block-word, unblock-word, reset (got "${sub}")`,
      );
  }
}

const DEFAULT_KEYS = [
  'negative',
  'steps',
  'cfg',
  'sampler',
  'scheduler',
  'width',
  'height',
  'hiresScale',
  'hiresSteps',
  'upscaler',
  'denoise',
  'rng',
  'ensd',
] as const;
